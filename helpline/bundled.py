"""Where the bundled flows, catalogues and sample data are.

In the checkout (and an editable install) they are the top-level ``flows/``, ``locales/``
and ``data/`` folders next to the package. A built wheel carries the same folders inside
the package, as ``helpline/_bundled/<name>`` (``[tool.setuptools.package-dir]`` in
``pyproject.toml``), so an installed ``helpline`` finds them wherever it is run from.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
INSTALLED = PACKAGE_DIR / "_bundled"
CHECKOUT = PACKAGE_DIR.parent


def bundled(name: str) -> Path:
    """The bundled folder ``name`` (``flows``, ``locales`` or ``data``)."""
    installed = INSTALLED / name
    return installed if installed.is_dir() else CHECKOUT / name


FLOWS = bundled("flows")
LOCALES = bundled("locales")
DATA = bundled("data")

__all__ = ["DATA", "FLOWS", "LOCALES", "bundled"]
