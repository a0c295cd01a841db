"""The deployment files say what the deployment guide promises: pinned images and versions,
no source mounts, nothing installed at start; systemd accepts the units. (Building and
running the images needs a container runtime and the internet; .ci/wheel-check runs the
wheel itself.)"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from helpline.config import load_settings

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def pinned() -> dict[str, str]:
    out: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not pinned with =="
            out[_name(name)] = version
    return out


def test_constraints_pin_every_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    versions = pinned()
    missing = [d for d in project["dependencies"] if _name(d) not in versions]
    assert missing == [], "run 'make constraints'"
    assert "pytest" not in versions and "mypy" not in versions  # only what the wheel needs


def test_the_compose_file_pins_images_mounts_no_source_and_installs_nothing() -> None:
    compose = yaml.safe_load((ROOT / "docs" / "signal-compose.yaml").read_text())
    for name, service in compose["services"].items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), name
        assert re.search(r":\d+(\.\d+)+", image), f"{name}: {image} is not a version tag"
        assert "command" not in service, f"{name} runs a command of its own"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            assert not source.startswith((".", "/")), f"{name} mounts {source}"
    helpline = compose["services"]["helpline"]
    assert helpline["image"] == "helpline:0.1.0"
    assert "ports" not in compose["services"]["signal-cli"]  # only on the compose network
    assert "pip" not in (ROOT / "docs" / "signal-compose.yaml").read_text().replace(
        "pip install", "")


def test_the_dockerfile_installs_the_built_wheel_with_the_constraints() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "pip wheel" in text
    assert "pip install --no-cache-dir -c /tmp/constraints.txt /tmp/dist/helpline-*.whl" in text
    assert re.search(r"ARG PYTHON_IMAGE=python:3\.11\.\d+-slim", text)
    assert "USER helpline" in text and 'CMD ["run"]' in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", "var", ".env", "secret.key", "*.db"} <= set(ignored)


def test_the_systemd_unit_checks_before_it_runs() -> None:
    unit = (ROOT / "deploy" / "systemd" / "helpline.service").read_text()
    assert "ExecStartPre=/opt/helpline/bin/helpline doctor --offline" in unit
    assert "ExecStart=/opt/helpline/bin/helpline run" in unit
    assert "EnvironmentFile=/etc/helpline/helpline.env" in unit
    assert "HELPLINE_SECRET_KEY=" not in unit.replace("(HELPLINE_SECRET_KEY=...", "")


def test_systemd_itself_accepts_the_units(tmp_path: Path) -> None:
    """``systemd-analyze verify`` reads each unit as systemd would (every directive known,
    every value valid), with the installed ``helpline`` in place of /opt/helpline's."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian's systemd package)")
    helpline = Path(sys.executable).parent / "helpline"
    assert helpline.is_file()
    units = sorted((ROOT / "deploy" / "systemd").iterdir())
    assert {u.name for u in units} >= {"helpline.service", "helpline-backup.service",
                                       "helpline-backup.timer"}
    for unit in units:
        (tmp_path / unit.name).write_text(
            unit.read_text().replace("/opt/helpline/bin/helpline", str(helpline)))
    found = subprocess.run([analyze, "verify", "--man=no", *sorted(
        str(p) for p in tmp_path.iterdir())], capture_output=True, text=True, timeout=60,
        cwd=tmp_path)
    assert found.returncode == 0 and found.stderr.strip() == "", found.stderr


def test_the_several_workers_example_is_valid_compose_and_real_settings() -> None:
    """docs/postgresql.md's compose example for workers together: YAML, and every
    HELPLINE_ variable in it a setting that validates (the secret filled in)."""
    text = (ROOT / "docs" / "postgresql.md").read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```yaml\n")[1:]]
    [together] = [yaml.safe_load(b) for b in blocks if "WORKERS_TOGETHER" in b]
    service = together["services"]["helpline"]
    assert service["deploy"] == {"replicas": 3}
    env = {k: str(v) for k, v in service["environment"].items() if k.startswith("HELPLINE_")}
    env["HELPLINE_TELEGRAM_WEBHOOK_SECRET"] = "s3cret"
    env["HELPLINE_TELEGRAM_TOKEN"] = "123456:ABC"
    settings = load_settings(None, env, cwd=ROOT / "tests")
    assert settings.workers.together and settings.on_postgres
    assert settings.telegram.webhook_listen == "0.0.0.0:8443"
    assert "proxy_next_upstream error timeout" in text
