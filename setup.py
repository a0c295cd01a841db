"""The build step that carries the top-level ``flows/``, ``locales/`` and ``data/`` folders
into the wheel, as ``helpline/_bundled/<name>`` (found by ``helpline/bundled.py``). Every
other setting is in ``pyproject.toml``. An editable install uses the checkout's folders."""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
BUNDLED = ("flows", "locales", "data")
SKIPPED = (".mo", ".pyc")


class BuildWithBundled(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for name in BUNDLED:
            for source in sorted((ROOT / name).rglob("*")):
                if not source.is_file() or source.name.endswith(SKIPPED):
                    continue
                target = Path(self.build_lib, "helpline", "_bundled",
                              source.relative_to(ROOT))
                self.mkpath(str(target.parent))
                self.copy_file(str(source), str(target))


setup(cmdclass={"build_py": BuildWithBundled})
