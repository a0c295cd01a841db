"""Command line: ``helpline run | chat | flows check | flows schema | flows graph``."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from helpline.config import ConfigError, Settings, load_settings
from helpline.flow.loader import FlowError, check_flows, load_flows


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="helpline", description=__doc__)
    parser.add_argument("--config", help="path to helpline.toml (or set HELPLINE_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="serve the configured channels (Telegram, Signal)")
    chat = sub.add_parser("chat", help="talk to the flows in this terminal")
    chat.add_argument("--db", help="SQLite file (default from config: ./var/helpline.db)")
    chat.add_argument("--flows", help="flows folder (default: the bundled flows)")
    flows = sub.add_parser("flows", help="check, describe and draw flows")
    fsub = flows.add_subparsers(dest="flows_command", required=True)
    check = fsub.add_parser("check", help="report every problem in a flows folder")
    check.add_argument("dir", nargs="?", help="flows folder (default from config)")
    fsub.add_parser("schema", help="print the JSON Schema of a flow file")
    graph = fsub.add_parser("graph", help="print a Mermaid flowchart of one flow")
    graph.add_argument("flow", help="flow id")
    graph.add_argument("--flows", help="flows folder (default from config)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"helpline: {exc}", file=sys.stderr)
        return 2
    if args.command == "flows":
        return _flows(args, settings)
    if args.command == "chat":
        return _chat(args, settings)
    if args.command == "run":
        return _run(settings)
    return 2


def _flows(args: argparse.Namespace, settings: Settings) -> int:
    if args.flows_command == "schema":
        from helpline.flow.model import json_schema

        print(json.dumps(json_schema(), indent=2))
        return 0
    folder = Path(getattr(args, "dir", None) or getattr(args, "flows", None) or settings.flows)
    if args.flows_command == "check":
        flowset, problems = check_flows(folder)
        for problem in problems:
            print(problem)
        if problems:
            print(f"{len(problems)} problem(s) in {folder}", file=sys.stderr)
            return 1
        print(f"{len(flowset.flows)} flows OK in {folder}")
        return 0
    if args.flows_command == "graph":
        from helpline.flow.graph import mermaid

        try:
            flowset = load_flows(folder)
        except FlowError as exc:
            print(exc, file=sys.stderr)
            return 1
        if args.flow not in flowset:
            print(f"helpline: no flow '{args.flow}' in {folder}; flows: "
                  + ", ".join(sorted(flowset.flows)), file=sys.stderr)
            return 1
        print(mermaid(flowset[args.flow]), end="")
        return 0
    return 2


def _refuse_invalid_flows(folder: Path) -> bool:
    _, problems = check_flows(folder)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"helpline: refusing to start: {len(problems)} problem(s) in the flows in "
              f"{folder}; fix them (helpline flows check) and start again", file=sys.stderr)
    return bool(problems)


def _chat(args: argparse.Namespace, settings: Settings) -> int:
    updates: dict[str, object] = {}
    if args.db:
        updates["db"] = Path(args.db)
    if args.flows:
        updates["flows"] = Path(args.flows)
    settings = settings.model_copy(update=updates)
    if _refuse_invalid_flows(settings.flows):
        return 1
    from helpline.chat import run_chat

    return asyncio.run(run_chat(settings))


def _run(settings: Settings) -> int:
    if not settings.secret_key:
        print("helpline: HELPLINE_SECRET_KEY is required for 'helpline run'; make one with: "
              "python -c 'import secrets; print(secrets.token_urlsafe(48))'", file=sys.stderr)
        return 2
    if _refuse_invalid_flows(settings.flows):
        return 1
    from helpline.serve import build_channels, serve

    try:
        channels = build_channels(settings)
    except ConfigError as exc:
        print(f"helpline: {exc}", file=sys.stderr)
        return 2
    if not channels:
        print("helpline: no channel configured; set HELPLINE_TELEGRAM_TOKEN, or "
              "HELPLINE_SIGNAL_SERVICE and HELPLINE_SIGNAL_NUMBER", file=sys.stderr)
        return 2
    stop = asyncio.Event()

    async def main_loop() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, channels, stop)

    asyncio.run(main_loop())
    return 0


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
