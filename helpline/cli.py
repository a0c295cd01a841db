"""Command line: ``helpline run | chat | flows check | flows schema | flows graph | i18n``."""

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
    check.add_argument("--strict", action="store_true",
                       help="missing and fuzzy translations are errors too")
    fsub.add_parser("schema", help="print the JSON Schema of a flow file")
    graph = fsub.add_parser("graph", help="print a Mermaid flowchart of one flow")
    graph.add_argument("flow", help="flow id")
    graph.add_argument("--flows", help="flows folder (default from config)")
    i18n = sub.add_parser("i18n", help="extract every text into locales/helpline.pot, "
                          "update each catalogue, and check them")
    i18n.add_argument("--init", action="append", default=[], metavar="LANG",
                      help="start a catalogue for LANG (repeatable)")
    i18n.add_argument("--check", action="store_true", help="only check; write nothing")
    i18n.add_argument("--strict", action="store_true",
                      help="missing and fuzzy translations are errors too")
    _resources_parser(sub)
    return parser


def _resources_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    resources = sub.add_parser("resources", help="the service directory: import, openings")
    resources.add_argument("--db", help="SQLite file (default from config)")
    rsub = resources.add_subparsers(dest="resources_command", required=True)
    imp = rsub.add_parser("import", help="import an HSDS datapackage folder, HSDS JSON, or "
                          "the YAML form; replaces the previous import from the same source")
    imp.add_argument("path", help="folder (or datapackage.json), .json, or .yaml file")
    imp.add_argument("--skip-bad", action="store_true",
                     help="import the good rows and report the bad (default: all or nothing)")
    imp.add_argument("--source", help="name of the source (default: the resolved path)")
    imp.add_argument("--map", action="append", metavar="CSV",
                     help="more taxonomy mapping rules, before data/taxonomy-map.csv's")
    imp.add_argument("--create", action="store_true",
                     help="create the database when there is none yet")
    openings = rsub.add_parser("openings", help="set how many are free now (beds, places)")
    openings.add_argument("service_id")
    openings.add_argument("available", type=int)
    openings.add_argument("--unit", help="what is counted, when a service counts several")
    rsub.add_parser("list", help="list services with their ids and openings")


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
    if args.command == "i18n":
        return _i18n(args, settings)
    if args.command == "resources":
        from helpline.resources.cli import run_resources

        if args.db:
            settings = settings.model_copy(update={"db": Path(args.db)})
        return asyncio.run(run_resources(args, settings))
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
        from helpline.i18n_check import report

        lines, bad_translations = report(settings, folder, strict=args.strict)
        print("\n".join(lines), end="\n" if lines else "")
        if problems or bad_translations:
            print(f"{len(problems)} problem(s) in {folder}, {bad_translations} in the "
                  f"translations in {settings.locales}", file=sys.stderr)
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


def _i18n(args: argparse.Namespace, settings: Settings) -> int:
    from helpline.i18n_check import report, update_catalogs

    if not args.check:
        for path in update_catalogs(settings.locales, settings.flows, args.init,
                                    settings.handoff.canned):
            print(f"updated {path}")
    lines, errors = report(settings, settings.flows, strict=args.strict)
    print("\n".join(lines), end="\n" if lines else "")
    if errors:
        print(f"{errors} problem(s) in the translations in {settings.locales}", file=sys.stderr)
        return 1
    return 0


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
    if not settings.resources.seed:  # the fictional sample, for `helpline chat` only
        from helpline.resources import SAMPLE_DIRECTORY

        updates["resources"] = settings.resources.model_copy(
            update={"seed": str(SAMPLE_DIRECTORY)})
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
