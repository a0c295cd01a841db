"""The directory at national size: import, lookups, the event loop, memory.

``python -m bench.directory_bench [--services 300000] [--lookups 2000]``

Generates a fictional national directory (``bench.directory_gen``: 300,000 services by
default), then, each in its own process so their peaks are their own:

* **import**: ``import_directory`` of the datapackage into a fresh database (what
  ``helpline resources import`` runs): seconds, CPU seconds (with the processes that
  build slices, ``helpline/resources/slices.py``) and peak RSS (``VmHWM``: the importing
  process's, plus the largest worker's once for each worker);
* **bot**: the app as ``helpline run`` builds it (``open_app``, the collector settled as
  when serving) on that database, then ``--lookups`` lookups with what people choose in
  the bundled flow (a need; a town, postcode or region typed, three times in four; a
  gender and an age group, sometimes; now and then a shared location), twice (once
  alone, once beside a ticking task): latency p50, p99
  and max (wall time, and the process's CPU time, which neighbours on a shared machine do
  not inflate), the longest the event loop's thread ran without giving the loop back (its CPU
  time between two turns of a ticking task, so a busy neighbour on a shared machine does
  not inflate it), and the bot's RSS with the directory in use.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import SECRET, emit, settings_for
from bench.directory_gen import generate

NOW = 1_800_000_000.0
NEEDS = [("shelter", 30), ("legal", 12), ("medical", 10), ("counselling", 14),
         ("immigration", 6), ("substance_use", 5), ("food", 12), ("documents", 4),
         ("other", 7)]


def _status(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) / 1024
    return 0.0


async def _import(folder: Path, db: Path) -> dict[str, object]:
    from helpline.privacy import Vault
    from helpline.resources import import_directory, slices
    from helpline.store import Store

    store = await Store.open(db, Vault(SECRET))
    started, cpu = time.perf_counter(), time.process_time()
    result = await import_directory(store, folder, NOW)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    await store.close()
    assert result.applied, result.problems[:5]
    # The processes that built slices (slices.py), ended by now: their CPU, and the
    # largest one's peak, counted once for each (the peak RSS target counts every process).
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    workers = slices.WORKERS if children.ru_maxrss else 0
    own_peak = _status("VmHWM:")
    return {"services": result.services, "import_s": round(seconds, 1),
            "import_cpu_s": round(cpu + children.ru_utime + children.ru_stime, 1),
            "import_cpu_main_s": round(cpu, 1),
            "import_peak_rss_mb": round(own_peak + workers * children.ru_maxrss / 1024, 0),
            "import_peak_rss_main_worker_mb": (round(own_peak), round(
                children.ru_maxrss / 1024)), "import_workers": workers}


def _criteria(rng: random.Random, towns: list[str], postcodes: list[str],
              regions: list[str]) -> dict[str, object]:
    need = rng.choices([n for n, _ in NEEDS], [w for _, w in NEEDS])[0]
    roll = rng.random()
    area = ("" if roll < 0.25 else rng.choice(towns) if roll < 0.65
            else rng.choice(postcodes) if roll < 0.85 else rng.choice(regions))
    criteria: dict[str, object] = {"needs": [need], "area": area}
    if rng.random() < 0.4:
        criteria["gender"] = rng.choice(["women", "women", "men", "nonbinary"])
    if rng.random() < 0.4:
        criteria["age_group"] = rng.choice(["18_plus", "18_plus", "under_18"])
    if not area and rng.random() < 0.2:
        criteria["near"] = (50 + rng.random() * 8, -5 + rng.random() * 7)
    return criteria


async def _bot(db: Path, lookups: int) -> dict[str, object]:
    from dataclasses import replace

    from helpline.collector import settled_garbage_collector
    from helpline.resources.matching import Criteria
    from helpline.resources.store import Directory
    from helpline.runtime import open_app

    settings = settings_for(db.parent)
    rng = random.Random(5)
    async with open_app(settings, SECRET) as app:
        directory = Directory(app.store)
        rows = await app.store.db.execute_fetchall(
            "SELECT place, within FROM directory_places")
        towns = sorted({str(p) for p, w in rows if not str(p)[:1].isdigit()
                        and not str(p).startswith("Z")})
        postcodes = sorted({str(p) for p, _ in rows if str(p).startswith("Z")})
        regions = sorted({str(w) for _, w in rows if "shire" in str(w)})
        typed = [_criteria(rng, towns, postcodes, regions) for _ in range(lookups)]
        with settled_garbage_collector():
            longest = 0.0
            running = True

            async def tick() -> None:
                nonlocal longest
                while running:
                    before = time.thread_time()
                    await asyncio.sleep(0)
                    longest = max(longest, time.thread_time() - before)

            # The first lookup reads the ranking index and the places (as after an import),
            # beside the ticking task: the loop's longest hold while the index is built.
            ticker = asyncio.create_task(tick())
            first = time.perf_counter()
            await directory.lookup(Criteria(needs=("shelter",)), NOW)
            first_s = time.perf_counter() - first
            running = False
            await ticker
            longest_first, longest, running = longest, 0.0, True
            asked = []
            for item in typed:
                near = item.pop("near", None)
                asked.append(replace(Criteria.from_lookup(item), near=near))  # type: ignore[arg-type]
            # Latency first, with nothing else on the loop: a task spinning on the loop
            # beside the lookups takes the GIL from the database thread and adds up to
            # its switch interval (5 ms) to each trip there.
            times = []
            cpus: list[float] = []  # the process's CPU time (both threads): what a lookup
            found = []              # costs, whatever the neighbours on the machine do
            kinds: dict[str, list[float]] = {}
            for criteria in asked:
                started, cpu = time.perf_counter(), time.process_time()
                outcome = await directory.lookup(criteria, NOW)
                times.append(time.perf_counter() - started)
                cpus.append(time.process_time() - cpu)
                found.append(len(outcome.matches))
                kind = ("near" if criteria.near else "no_area" if not criteria.area else
                        "postcode" if criteria.area.startswith("Z") else
                        "region" if "shire" in criteria.area else "town")
                kinds.setdefault(kind, []).append(times[-1])
            # Then the same lookups again with the ticking task, for the loop's longest hold.
            ticker = asyncio.create_task(tick())
            for criteria in asked:
                await directory.lookup(criteria, NOW)
            running = False
            await ticker
        times.sort()
        return {
            "first_lookup_ms": round(first_s * 1000, 1),
            "lookup_p50_ms": round(statistics.median(times) * 1000, 2),
            "lookup_p99_ms": round(times[int(len(times) * 0.99) - 1] * 1000, 2),
            "lookup_max_ms": round(times[-1] * 1000, 2),
            "lookup_cpu_p50_ms": round(statistics.median(cpus) * 1000, 2),
            "lookup_cpu_p99_ms": round(sorted(cpus)[int(len(cpus) * 0.99) - 1] * 1000, 2),
            "lookup_cpu_max_ms": round(max(cpus) * 1000, 2),
            "loop_longest_ms": round(longest * 1000, 2),
            "loop_longest_first_lookup_ms": round(longest_first * 1000, 2),
            **{f"{kind}_p50_max_ms": (round(statistics.median(spent) * 1000, 2),
                                      round(max(spent) * 1000, 2))
               for kind, spent in sorted(kinds.items())},
            "results_median": statistics.median(found),
            "bot_rss_mb": round(_status("VmRSS:"), 0),
            "bot_peak_rss_mb": round(_status("VmHWM:"), 0),
        }


def _child(*args: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-m", "bench.directory_bench", *args],
                         check=True, capture_output=True, text=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=300_000)
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="30,000 services, 300 lookups")
    parser.add_argument("--work", type=Path, help="keep the generated package (and the "
                        "database) in this folder, and use them again when there")
    parser.add_argument("--no-import", action="store_true", help="with --work: measure "
                        "lookups on the database imported before")
    parser.add_argument("step", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step and args.step[0] == "import":
        print(json.dumps(asyncio.run(_import(Path(args.step[1]), Path(args.step[2])))))
        return
    if args.step and args.step[0] == "bot":
        print(json.dumps(asyncio.run(_bot(Path(args.step[1]), int(args.step[2])))))
        return
    services, lookups = (30_000, 300) if args.quick else (args.services, args.lookups)
    with tempfile.TemporaryDirectory(prefix="helpline-directory-") as tmp:
        work = args.work or Path(tmp)
        folder, db = work / "package", work / "helpline.db"
        figures: dict[str, object] = {}
        if not (folder / "services.csv").exists():
            started = time.perf_counter()
            generate(folder, services)
            figures["generate_s"] = round(time.perf_counter() - started, 1)
        if not (args.no_import and db.exists()):
            for stale in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
                stale.unlink(missing_ok=True)
            figures |= _child("import", str(folder), str(db))
        figures |= _child("bot", str(db), str(lookups))
    emit({"bench": "directory", **figures})


if __name__ == "__main__":
    main()
