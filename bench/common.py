"""Helpers shared by the benchmarks: settings, timing, results as one JSON line."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import statistics
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from helpline.config import Settings
from helpline.flow.engine import Engine, EngineConfig

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret-key-0123456789-abcdefghijklmnopqrstuv"
RESULT_PREFIX = "BENCH-RESULT "


def settings_for(folder: Path, **updates: Any) -> Settings:
    """Settings for a benchmark: the bundled flows, the database in ``folder``."""
    return Settings(db=folder / "helpline.db", secret_key=SECRET).model_copy(update=updates)


def emit(result: dict[str, Any]) -> None:
    """Print a benchmark's figures as one line the runner picks up."""
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def parse_result(output: str) -> dict[str, Any]:
    for line in reversed(output.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return dict(json.loads(line[len(RESULT_PREFIX):]))
    raise ValueError("no result line in the benchmark's output")


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine() -> dict[str, str]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model or platform.processor() or "unknown",
        "python": sys.version.split()[0],
        "platform": platform.platform(terse=True),
    }


def engine_for(settings: Settings) -> Engine:
    """The engine exactly as the app builds it (commands in every enabled language)."""
    from helpline.app import engine_config
    from helpline.flow.loader import load_flows
    from helpline.i18n import CatalogTranslator

    translator = CatalogTranslator(settings.locales, settings.default_language)
    config: EngineConfig = engine_config(settings, translator)
    return Engine(load_flows(settings.flows), config, translator)


@contextlib.contextmanager
def profiling(path: str | Path | None) -> Iterator[None]:
    """Write a cProfile of the block to ``path`` (nothing when it is None)."""
    import cProfile

    profiler = cProfile.Profile() if path else None
    if profiler:
        profiler.enable()
    try:
        yield
    finally:
        if profiler:
            profiler.disable()
            profiler.dump_stats(str(path))
