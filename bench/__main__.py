"""Run every benchmark and print one table: ``python -m bench [--quick] [--repeat N]``.

Each benchmark runs in its own process, ``--repeat`` times (3 by default); the table shows
the median of the runs (the machine may be shared, so single runs are noisy) and, for the
headline figures, the spread. Targets are read from the table, never asserted by tests.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.common import ROOT, machine, median, parse_result

FULL = {
    "engine": ["--people", "2000", "--messages", "25"],
    "store": ["--saves", "5000"],
    "pipeline": ["--people", "200", "--messages", "10"],
    "telegram": ["--people", "1000", "--messages", "10"],
    "signal": ["--people", "1000", "--messages", "10"],
    "memory": ["--stored", "10000", "--active", "1000"],
    "startup": ["--generated", "100"],
    "console": ["--advocates", "20", "--cases", "200", "--messages", "10"],
}
QUICK = {
    "engine": ["--people", "400", "--messages", "25"],
    "store": ["--saves", "1000"],
    "pipeline": ["--people", "100", "--messages", "5"],
    "telegram": ["--quick"],
    "signal": ["--quick"],
    "memory": ["--stored", "2000", "--active", "200"],
    "startup": ["--generated", "100"],
    "console": ["--advocates", "20", "--cases", "50", "--messages", "5"],
}
MODULES = {
    "engine": "bench.engine_bench", "store": "bench.store_bench",
    "pipeline": "bench.pipeline_bench", "telegram": "bench.telegram_e2e",
    "signal": "bench.signal_e2e", "memory": "bench.memory_bench",
    "startup": "bench.startup_bench", "console": "bench.console_load",
}


@dataclass(frozen=True)
class Row:
    bench: str
    key: str
    label: str
    unit: str
    target: str = ""
    met: Callable[[float], bool] | None = None


ROWS = [
    Row("telegram", "helpline_msgs_per_s", "Telegram: helpline, person messages/s", "msg/s"),
    Row("telegram", "convo_msgs_per_s",
        "Telegram: PTB ConversationHandler + PicklePersistence bot, person messages/s",
        "msg/s"),
    Row("telegram", "echo_msgs_per_s", "Telegram: bare PTB echo, person messages/s", "msg/s"),
    Row("telegram", "ratio", "Telegram: throughput helpline / echo", "x", ">= 0.9",
        lambda v: v >= 0.9),
    Row("telegram", "ratio_convo", "Telegram: throughput helpline / conversation bot", "x"),
    Row("telegram", "helpline_cpu_ms_per_msg", "Telegram: helpline CPU per person message",
        "ms"),
    Row("telegram", "convo_cpu_ms_per_msg",
        "Telegram: conversation bot CPU per person message", "ms"),
    Row("telegram", "echo_cpu_ms_per_msg", "Telegram: echo CPU per person message", "ms"),
    Row("telegram", "helpline_loop_cpu_ms_per_msg",
        "Telegram: helpline CPU per person message, event loop's thread", "ms"),
    Row("telegram", "helpline_other_threads_cpu_ms_per_msg",
        "Telegram: helpline CPU per person message, other threads (database)", "ms"),
    Row("telegram", "convo_owed_cpu_s",
        "Telegram: conversation bot CPU writing its pickle after the load", "s"),
    Row("telegram", "convo_cpu_owed_ms_per_msg",
        "Telegram: conversation bot CPU per person message, its pickle write-out included",
        "ms"),
    Row("telegram", "cpu_ratio_convo_load",
        "Telegram: CPU per message helpline / conversation bot, load phase only", "x"),
    Row("telegram", "cpu_ratio_convo",
        "Telegram: CPU per message helpline / conversation bot (write-out included)", "x",
        "<= 1", lambda v: v <= 1.0),
    Row("telegram", "helpline_p50_ms", "Telegram: helpline p50 first reply (load)", "ms"),
    Row("telegram", "helpline_p99_ms", "Telegram: helpline p99 first reply (load)", "ms"),
    Row("telegram", "convo_p50_ms", "Telegram: conversation bot p50 first reply (load)",
        "ms"),
    Row("telegram", "convo_p99_ms", "Telegram: conversation bot p99 first reply (load)",
        "ms"),
    Row("telegram", "echo_p50_ms", "Telegram: echo p50 first reply (load)", "ms"),
    Row("telegram", "echo_p99_ms", "Telegram: echo p99 first reply (load)", "ms"),
    Row("telegram", "helpline_light_p50_ms", "Telegram: helpline p50 (20 people)", "ms"),
    Row("telegram", "helpline_light_p99_ms", "Telegram: helpline p99 (20 people)", "ms"),
    Row("telegram", "echo_light_p50_ms", "Telegram: echo p50 (20 people)", "ms"),
    Row("telegram", "echo_light_p99_ms", "Telegram: echo p99 (20 people)", "ms"),
    Row("telegram", "helpline_replies_per_msg", "Telegram: helpline replies per message", ""),
    Row("telegram", "helpline_api_calls_per_s", "Telegram: helpline Bot API calls/s", "call/s"),
    Row("telegram", "echo_api_calls_per_s", "Telegram: echo Bot API calls/s", "call/s"),
    Row("telegram", "helpline_bot_cpu_pct", "Telegram: helpline process CPU (load)", "%"),
    Row("telegram", "convo_bot_cpu_pct", "Telegram: conversation bot process CPU (load)",
        "%"),
    Row("telegram", "echo_bot_cpu_pct", "Telegram: echo process CPU (load)", "%"),
    Row("telegram", "helpline_fake_cpu_pct", "Telegram: fake + people CPU (helpline run)",
        "%"),
    Row("signal", "helpline_msgs_per_s", "Signal: helpline, person messages/s", "msg/s"),
    Row("signal", "echo_msgs_per_s", "Signal: bare signalbot echo, person messages/s",
        "msg/s"),
    Row("signal", "ratio", "Signal: throughput helpline / echo", "x", ">= 0.9",
        lambda v: v >= 0.9),
    Row("signal", "storing_msgs_per_s",
        "Signal: signalbot echo storing each exchange first, person messages/s", "msg/s"),
    Row("signal", "ratio_storing", "Signal: throughput helpline / storing echo", "x",
        ">= 1", lambda v: v >= 1.0),
    Row("signal", "helpline_cpu_ms_per_msg", "Signal: helpline CPU per person message", "ms"),
    Row("signal", "storing_cpu_ms_per_msg", "Signal: storing echo CPU per person message",
        "ms"),
    Row("signal", "cpu_ratio_storing",
        "Signal: CPU per message helpline / storing echo", "x"),
    Row("signal", "helpline_p50_ms", "Signal: helpline p50 first reply (load)", "ms"),
    Row("signal", "helpline_p99_ms", "Signal: helpline p99 first reply (load)", "ms"),
    Row("signal", "echo_p50_ms", "Signal: echo p50 first reply (load)", "ms"),
    Row("signal", "echo_p99_ms", "Signal: echo p99 first reply (load)", "ms"),
    Row("signal", "helpline_light_p50_ms", "Signal: helpline p50 (20 people)", "ms"),
    Row("signal", "helpline_light_p99_ms", "Signal: helpline p99 (20 people)", "ms"),
    Row("signal", "echo_light_p50_ms", "Signal: echo p50 (20 people)", "ms"),
    Row("signal", "echo_light_p99_ms", "Signal: echo p99 (20 people)", "ms"),
    Row("signal", "helpline_replies_per_msg", "Signal: helpline replies per message", ""),
    Row("signal", "helpline_bot_cpu_pct", "Signal: helpline process CPU (load)", "%"),
    Row("signal", "echo_bot_cpu_pct", "Signal: echo process CPU (load)", "%"),
    Row("signal", "helpline_fake_cpu_pct", "Signal: fake + people CPU (helpline run)", "%"),
    Row("pipeline", "pipeline_msgs_per_s", "App alone (no network), person messages/s",
        "msg/s"),
    Row("pipeline", "pipeline_cpu_ms_per_msg", "App alone: CPU per person message", "ms"),
    Row("pipeline", "pipeline_loop_cpu_ms_per_msg",
        "App alone: CPU per person message, event loop's thread", "ms"),
    Row("engine", "engine_steps_per_s", "Engine alone: steps/s (one core, best of 5 rounds)",
        "step/s", ">= 50,000", lambda v: v >= 50_000),
    Row("engine", "engine_steps_per_s_median", "Engine alone: steps/s (median round)",
        "step/s"),
    Row("store", "store_saves_per_s", "Store alone: save_turn/s (WAL, on disk)", "save/s"),
    Row("store", "store_reads_per_s", "Store alone: person() reads/s", "read/s"),
    Row("store", "store_saves_at_once_per_s",
        "Store alone: save_turn/s, 100 at once (group commit)", "save/s"),
    Row("store", "store_reads_at_once_per_s",
        "Store alone: person() reads/s, 100 at once (batched)", "read/s"),
    Row("memory", "memory_peak_rss_mb", "Peak RSS of the bot process (stored/active: sizes)",
        "MB",
        "< 150", lambda v: v < 150),
    Row("memory", "memory_rss_started_mb", "RSS after start-up", "MB"),
    Row("startup", "startup_s", "Start-up: load + check + engine + open store", "s", "< 2",
        lambda v: v < 2),
    Row("startup", "startup_imports_s", "Start-up: imports (not in the figure above)", "s"),
    Row("startup", "flows_check_s", "`helpline flows check` (whole command)", "s"),
    Row("console", "console_to_page_p50_ms",
        "Console: a person's message to the advocate's open page, p50", "ms"),
    Row("console", "console_to_page_p99_ms",
        "Console: a person's message to the advocate's open page, p99", "ms", "<= 200",
        lambda v: v <= 200),
    Row("console", "console_lines_not_seen", "Console: lines that never reached the page", "",
        "0", lambda v: v == 0),
]


def run(bench: str, args: list[str]) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", MODULES[bench], *args], cwd=str(ROOT),
                          capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"{bench} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return parse_result(proc.stdout)


def fmt(value: float) -> str:
    if value != value:
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def table(results: dict[str, list[dict[str, Any]]], size: dict[str, list[str]]) -> str:
    lines = ["| figure | median | runs | target | met |", "|---|---:|---|---|---|"]
    for row in ROWS:
        runs = [float(r[row.key]) for r in results.get(row.bench, []) if row.key in r]
        if not runs:
            continue
        value = median(runs)
        spread = " / ".join(fmt(v) for v in runs)
        met = "" if row.met is None else ("yes" if row.met(value) else "NO")
        unit = f" {row.unit}" if row.unit else ""
        lines.append(f"| {row.label} | {fmt(value)}{unit} | {spread} | {row.target} | {met} |")
    lines.append("")
    lines.append("Sizes: " + "; ".join(f"{b} {' '.join(a)}" for b, a in size.items()
                                       if b in results))
    lines.append("Telegram: the three bots without PTB's AIORateLimiter, with the same long "
                 "polling; helpline lets at most 8 Bot API calls in flight, the conversation "
                 "and echo bots handle one update at a time (concurrent_updates=1, PTB's "
                 "default); the conversation bot (bench/telegram_convo.py) persists with "
                 "PicklePersistence's default update_interval (60 s). CPU per message: the "
                 "bot process's CPU in the load phase over the person messages answered; "
                 "'write-out included' adds the CPU the conversation bot spends after the "
                 "load writing what the load changed (its next PicklePersistence run: PTB "
                 "rewrites the whole pickle once per changed chat); helpline writes before "
                 "it replies, so nothing is owed after its load phase. "
                 "Signal: the fake answers /v2/send with a list for all three bots; the "
                 "storing echo writes each exchange (one encrypted row, its own commit) "
                 "before it replies. Latency: a "
                 "person's message queued at the fake -> the bot's first call for that "
                 "person (reply, or delete for a quick exit). Load: every person at once, "
                 "answering each question as it arrives.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="smaller runs (Telegram and Signal: 200 people x 5 messages)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", nargs="*", choices=sorted(MODULES),
                        help="run only these benchmarks")
    parser.add_argument("--json", help="also write every run's figures to this file")
    args = parser.parse_args()
    size = QUICK if args.quick else FULL
    chosen = args.only or list(MODULES)
    results: dict[str, list[dict[str, Any]]] = {}
    began = time.monotonic()
    for round_ in range(args.repeat):
        for bench in chosen:  # interleaved, so a busy minute does not hit one bench only
            print(f"[{time.monotonic() - began:6.0f}s] run {round_ + 1}/{args.repeat}: "
                  f"{bench}", file=sys.stderr, flush=True)
            results.setdefault(bench, []).append(run(bench, size[bench]))
    info = machine()
    print(f"helpline benchmarks ({'quick' if args.quick else 'full'}; median of "
          f"{args.repeat} runs each): {info['nproc']} cores, {info['cpu']}, "
          f"Python {info['python']}")
    print(table(results, size))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"machine": info, "size": size, "results": results}, handle, indent=1)


if __name__ == "__main__":
    main()
