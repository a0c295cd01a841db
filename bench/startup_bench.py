"""Start-up: the bundled flows plus generated ones, loaded, checked, and the store opened;
and ``helpline flows check`` on the same folder.

``python -m bench.startup_bench [--generated N]``

Each generated flow (``gen_NNN``) has ten steps of every common kind (say, choose, ask with
validation, set, branch, call, end); the main menu gets no new option, so the first is
reached from a copy of ``safety_tips``. Calls nest as deep as real flows may (the engine
allows eight levels, and ``flows check`` says so): flows are called in chains of four, the
last of each calling ``checkin``, and each chain's head leads to the next chain's. The
start-up figure is measured in a fresh process, after the imports (shown apart): flows
loaded and checked, the engine built (command words in every enabled language), the
translator's catalogue compiled, and the store opened (migrations run) on a new file.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, emit

FLOW = """\
id: gen_{n:03d}
title: Generated flow {n}
start: intro
steps:
  intro:
    say: "Generated flow {n}: an introduction with a {{channel}} placeholder."
    next: pick
  pick:
    choose: "Generated question {n}: which one?"
    save: pick_{n}
    options:
      - label: "Option A of flow {n}"
        value: a
        next: note
      - label: "Option B of flow {n}"
        value: b
        keywords: ["bee {n}"]
        next: note
      - label: "Back of flow {n}"
        next: done
  note:
    ask: "Generated free text question {n}. Type skip to skip."
    save: note_{n}
    skip: ["skip"]
    validate: {{max_length: 200}}
    next: mark
  mark:
    set: {{seen_{n}: true}}
    next: route
  route:
    branch:
      - if: {{var: pick_{n}, equals: a}}
        next: deeper
    else: {{next: done}}
  deeper:
    call: {callee}
    next: thanks
  thanks:
    say: "Generated thanks {n}."
    {after}
  done:
    end: "Generated end {n}."
"""


CHAIN = 4  # flows called one from the other; the engine allows 8 levels in all


def make_flows(folder: Path, generated: int) -> None:
    shutil.copytree(ROOT / "flows", folder)
    tips = folder / "safety_tips.yaml"
    tips.write_text(tips.read_text(encoding="utf-8").replace(
        '    options:\n      - label: "Keeping your phone private"',
        '    options:\n      - label: "Generated flows"\n        flow: gen_000\n'
        '      - label: "Keeping your phone private"', 1), encoding="utf-8")
    for n in range(generated):
        last = n % CHAIN == CHAIN - 1 or n + 1 == generated
        callee = "checkin" if last else f"gen_{n + 1:03d}"
        after = (f"flow: gen_{n + CHAIN:03d}" if n % CHAIN == 0 and n + CHAIN < generated
                 else "next: done")
        (folder / f"gen_{n:03d}.yaml").write_text(FLOW.format(n=n, callee=callee,
                                                              after=after))


CHILD = """
import sys, time, asyncio, json
t0 = time.perf_counter()
from pathlib import Path
from helpline.app import App, engine_config
from helpline.config import Settings
from helpline.flow.engine import Engine
from helpline.flow.loader import load_flows
from helpline.i18n import CatalogTranslator
from helpline.privacy import Vault
from helpline.store import Store
t1 = time.perf_counter()
folder, db = Path(sys.argv[1]), Path(sys.argv[2])
settings = Settings(db=db, flows=folder, secret_key="s" * 40)
flows = load_flows(folder)
t2 = time.perf_counter()
translator = CatalogTranslator(settings.locales, settings.default_language)
engine = Engine(flows, engine_config(settings, translator), translator)
t3 = time.perf_counter()
async def open_store():
    store = await Store.open(db, Vault(settings.secret_key))
    app = App(settings, flows, store, store.vault, translator, engine=engine)
    await store.close()
    return app
asyncio.run(open_store())
t4 = time.perf_counter()
print(json.dumps({"imports": t1 - t0, "load_check": t2 - t1, "engine": t3 - t2,
                  "store": t4 - t3, "total": t4 - t1, "flows": len(flows.flows)}))
"""


def measure(generated: int) -> dict[str, float]:
    import json

    with tempfile.TemporaryDirectory(prefix="helpline-bench-") as tmp:
        folder = Path(tmp) / "flows"
        make_flows(folder, generated)
        out = subprocess.run([sys.executable, "-c", CHILD, str(folder), str(Path(tmp) / "h.db")],
                             check=True, capture_output=True, text=True, cwd=str(ROOT)).stdout
        child = json.loads(out.strip().splitlines()[-1])
        helpline = Path(sys.executable).parent / "helpline"
        t0 = time.perf_counter()
        check = subprocess.run([str(helpline), "flows", "check", str(folder)],
                               capture_output=True, text=True, cwd=str(ROOT))
        check_s = time.perf_counter() - t0
    if check.returncode != 0:
        raise SystemExit(f"generated flows do not pass the check:\n{check.stdout[-2000:]}")
    return {"startup_flows": child["flows"], "startup_imports_s": child["imports"],
            "startup_load_check_s": child["load_check"], "startup_engine_s": child["engine"],
            "startup_store_s": child["store"], "startup_s": child["total"],
            "flows_check_s": check_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--generated", type=int, default=100)
    args = parser.parse_args()
    emit(measure(args.generated))


if __name__ == "__main__":
    main()
