"""``helpline outreach create | start | pause | resume | status | list | close | suppress |
link`` (for admins; English output). No command prints a number, and none is logged."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when an outreach command runs, not at every start
    from helpline.config import Settings
    from helpline.outreach.store import Campaign, Campaigns


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    outreach = sub.add_parser("outreach", help="outreach campaigns on Signal, paced and safe")
    outreach.add_argument("--db", help="SQLite file or PostgreSQL URL (default from config)")
    osub = outreach.add_subparsers(dest="outreach_command", required=True)
    create = osub.add_parser("create", help="a campaign from a message and a file of numbers "
                             "(read, never copied; start it with 'start')")
    create.add_argument("name", help="lower-case letters, digits, - and _")
    create.add_argument("--message-file", required=True, type=Path)
    create.add_argument("--numbers", type=Path, help="CSV with a number (or phone) column, "
                        "or one number a line; none: a campaign of links and keywords only")
    create.add_argument("--lang", help="the message's language (default_language)")
    create.add_argument("--flow", default="", help="the flow a reply starts (default: the "
                        "welcome, as for anyone new)")
    create.add_argument("--engaged", action="append", default=[], metavar="FLOW",
                        help="a flow whose reach counts as engaged (repeatable; default: "
                        "[stats] flows)")
    create.add_argument("--keyword", default="", help="a Signal first message that counts "
                        "for this campaign (for posters)")
    create.add_argument("--reveal", action="store_true", help="the message may name the "
                        "organisation or its purpose")
    create.add_argument("--follow-up-file", type=Path, help="one follow-up to those who did "
                        "not reply")
    create.add_argument("--follow-up-days", type=float, default=0.0)
    for name, text in (("start", "start sending"), ("pause", "stop sending for now"),
                       ("close", "end it: its numbers are deleted now"),
                       ("link", "print the Telegram deep link and the keyword")):
        osub.add_parser(name, help=text).add_argument("name")
    resume = osub.add_parser("resume", help="go on after a pause (with --captcha after "
                             "Signal asked for one)")
    resume.add_argument("name")
    resume.add_argument("--captcha", help="the solved captcha (signalcaptcha://...) from "
                        "https://signalcaptchas.org/challenge/generate.html")
    status = osub.add_parser("status", help="what each campaign did, by week (small counts "
                             "hidden)")
    status.add_argument("name", nargs="?")
    status.add_argument("--since", help="first day (default: 12 weeks ago)")
    osub.add_parser("list", help="every campaign and its state")
    suppress = osub.add_parser("suppress", help="numbers no campaign may write to, for good")
    suppress.add_argument("numbers", help="a number, or a file of them")
    suppress.add_argument("--why", default="admin", choices=("admin", "advocate"))


def _fail(message: str) -> int:
    print(f"helpline: {message}", file=sys.stderr)
    return 2


async def run_outreach(args: argparse.Namespace, settings: Settings) -> int:
    from helpline.errors import HelplineError
    from helpline.outreach.store import CampaignError, Campaigns
    from helpline.privacy import SecretError, Vault
    from helpline.store import Store

    if not settings.secret_key:
        return _fail("set HELPLINE_SECRET_KEY (the key helpline run uses) first: numbers are "
                     "kept encrypted with it")
    if not settings.has_database():
        return _fail(f"{settings.db} does not exist; start helpline once (or check --db)")
    try:
        store = await Store.open(settings.database, Vault(settings.secret_key))
    except (HelplineError, SecretError) as exc:
        return _fail(str(exc))
    try:
        repo = Campaigns(store)
        command = args.outreach_command
        if command == "create":
            return await _create(args, settings, repo)
        if command == "list":
            return await _list(repo)
        if command == "suppress":
            return await _suppress(args, settings, repo)
        if command == "status":
            return await _status(args, settings, repo)
        campaign = await repo.by_name(args.name)
        if campaign is None:
            return _fail(f"no campaign '{args.name}' (helpline outreach list shows them)")
        if command == "link":
            return await _link(settings, campaign)
        return await _steer(args, settings, repo, campaign)
    except CampaignError as exc:
        return _fail(str(exc))
    finally:
        await store.close()


async def _create(args: argparse.Namespace, settings: Settings, repo: Campaigns) -> int:
    from helpline.config import flow_roots
    from helpline.flow.loader import load_flows
    from helpline.flow.words import normalize
    from helpline.outreach.numbers import read_numbers
    from helpline.outreach.words import revealing, says_how_to_stop

    problems: list[str] = []
    texts: dict[str, str] = {}
    for label, path in (("message", args.message_file), ("follow-up", args.follow_up_file)):
        if path is None:
            continue
        try:
            text = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{path.name}: cannot be read ({type(exc).__name__}); give a "
                            "UTF-8 text file")
            continue
        if not text:
            problems.append(f"{path.name}:1: the {label} is empty; write the message")
        elif len(text.encode()) > 2000:
            problems.append(f"{path.name}: the {label} is longer than one Signal message "
                            "(2,000 bytes); shorten it")
        if not args.reveal:
            for number, line in enumerate(text.splitlines(), start=1):
                found = revealing(line)
                if found:
                    problems.append(f"{path.name}:{number}: names what it is about "
                                    f"({', '.join(found)}); someone else may read this "
                                    "phone: write a neutral message, or add --reveal")
        texts[label] = text
    if args.follow_up_file is not None and args.follow_up_days <= 0:
        problems.append("--follow-up-days: give the days to wait before the follow-up")
    if args.follow_up_days > settings.outreach.keep_days:
        problems.append(f"--follow-up-days: more than [outreach] keep_days "
                        f"({settings.outreach.keep_days:g}), when the numbers are deleted")
    language = args.lang or settings.default_language
    if language not in settings.languages:
        problems.append(f"--lang: '{language}' is not one of languages "
                        f"({', '.join(settings.languages)})")
    flows = load_flows(settings.flows, flow_roots(settings))
    for wanted in [args.flow, *args.engaged]:
        if wanted and wanted not in flows:
            problems.append(f"--flow/--engaged: no flow '{wanted}' in {settings.flows}")
    numbers: list[str] = []
    if args.numbers is not None:
        read = read_numbers(args.numbers, settings.outreach.default_region)
        problems += read.problems
        numbers = read.numbers
    if problems:
        print("\n".join(problems), file=sys.stderr)
        print(f"helpline: {len(problems)} problem(s); nothing was created", file=sys.stderr)
        return 1
    engaged = args.engaged or [f for f in settings.stats.flows if f in flows]
    kept, suppressed = await repo.create(
        args.name, texts["message"], numbers, time.time(), language=language,
        keep_days=settings.outreach.keep_days, flow=args.flow, engaged=engaged,
        keyword=normalize(args.keyword), reveal=args.reveal,
        followup=texts.get("follow-up"), followup_days=args.follow_up_days)
    print(f"created campaign {args.name}: {kept} numbers to write to"
          + (f", {suppressed} left out (on the suppression list)" if suppressed else "")
          + ". Start it with: helpline outreach start " + args.name)
    if not says_how_to_stop(texts["message"]):
        print("note: the message does not say how to stop (for example \"Reply STOP and we "
              "won't write again\")")
    return 0


async def _list(repo: Campaigns) -> int:
    campaigns = await repo.all()
    if not campaigns:
        print("no campaigns (helpline outreach create makes one)")
        return 0
    for c in campaigns:
        print(f"{c.name:<24} {c.state:<8}{'  (' + c.paused + ')' if c.paused else ''}")
    return 0


async def _steer(args: argparse.Namespace, settings: Settings, repo: Campaigns,
                 campaign: Campaign) -> int:
    command, name = args.outreach_command, campaign.name
    if campaign.state == "closed":
        return _fail(f"campaign {name} is closed")
    if command == "close":
        gone = await repo.close(campaign.id, time.time())
        print(f"closed {name}: {gone} numbers deleted")
        return 0
    if command == "pause":
        await repo.set_state(campaign.id, "paused", "admin")
        print(f"paused {name}; helpline outreach resume {name} goes on")
        return 0
    if command == "start" and campaign.state != "ready":
        return _fail(f"campaign {name} is {campaign.state}; resume it instead")
    if command == "resume" and campaign.state not in ("paused", "done"):
        return _fail(f"campaign {name} is {campaign.state}, not paused")
    if command == "resume" and campaign.paused == "captcha":
        if not args.captcha:
            return _fail(f"Signal asked for a captcha: solve one at "
                         "https://signalcaptchas.org/challenge/generate.html and give it: "
                         f"helpline outreach resume {name} --captcha 'signalcaptcha://...'")
        problem = await _answer_challenge(settings, campaign.challenge, args.captcha)
        if problem is not None:
            return _fail(problem)
    await repo.set_state(campaign.id, "running")
    print(f"{'started' if command == 'start' else 'resumed'} {name}: the running bot sends at "
          f"most {settings.outreach.per_hour:g} an hour, outside quiet hours")
    return 0


async def _answer_challenge(settings: Settings, token: str, captcha: str) -> str | None:
    """Give the bridge the solved captcha for the challenge token (``POST
    /v1/accounts/{number}/rate-limit-challenge``); None when it took it."""
    import json

    import aiohttp

    signal = settings.signal
    if not signal.service or not signal.number:
        return "the Signal channel is not set up (signal.service, signal.number)"
    if not token:
        return ("the bridge gave no challenge token; wait a day, or see docs/outreach.md "
                "(\"A captcha\")")
    url = f"http://{signal.service}/v1/accounts/{signal.number}/rate-limit-challenge"
    body = json.dumps({"challenge_token": token, "captcha": captcha.strip()})
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session, \
                session.post(url, data=body,
                             headers={"Content-Type": "application/json"}) as resp:
            if resp.status < 300:
                return None
            return (f"the bridge refused the captcha (HTTP {resp.status}); solve a new "
                    "one and try again (a captcha works once, for a few minutes)")
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        return f"the Signal bridge could not be reached ({type(exc).__name__})"


async def _suppress(args: argparse.Namespace, settings: Settings, repo: Campaigns) -> int:
    from helpline.outreach.numbers import normalise, read_numbers

    path = Path(args.numbers)
    if path.is_file():
        found = read_numbers(path, settings.outreach.default_region)
        if found.problems:
            print("\n".join(found.problems), file=sys.stderr)
            return 1
        numbers = found.numbers
    else:
        try:
            numbers = [normalise(args.numbers, settings.outreach.default_region)]
        except ValueError as exc:
            return _fail(f"the number: {exc}")
    now = time.time()
    added = sum([await repo.suppress_number(n, args.why, now) for n in numbers])
    print(f"{added} numbers added to the suppression list"
          + (f" ({len(numbers) - added} were on it already)" if added < len(numbers) else ""))
    return 0


async def _link(settings: Settings, campaign: Campaign) -> int:
    bot = settings.outreach.bot_username.lstrip("@")
    if not bot and settings.telegram.token:
        bot = await _bot_username(settings) or ""
    if bot:
        print(f"https://t.me/{bot}?start={campaign.code}")
    else:
        print(f"https://t.me/<bot>?start={campaign.code}  (set [outreach] bot_username, or "
              "the Telegram token so that the bot can be asked)")
    if campaign.keyword:
        print(f"Signal keyword: {campaign.keyword}")
    return 0


async def _bot_username(settings: Settings) -> str | None:
    from telegram import Bot
    from telegram.error import TelegramError

    try:
        async with Bot(settings.telegram.token,
                       base_url=f"{settings.telegram.api_url.rstrip('/')}/bot") as bot:
            me = await bot.get_me()
    except (TelegramError, OSError) as exc:
        print(f"note: Telegram could not be asked for the bot's name ({type(exc).__name__})",
              file=sys.stderr)
        return None
    return me.username


async def _status(args: argparse.Namespace, settings: Settings, repo: Campaigns) -> int:
    from zoneinfo import ZoneInfo

    from helpline.outreach.report import status_lines

    now = time.time()
    try:
        first = (date.fromisoformat(args.since) if args.since
                 else datetime.fromtimestamp(now - 84 * 86400, ZoneInfo(settings.timezone))
                 .date())
    except ValueError:
        return _fail("--since takes a date like 2026-11-01")
    lines = await status_lines(repo, settings, first, now, args.name)
    if lines is None:
        return _fail(f"no campaign '{args.name}' (helpline outreach list shows them)")
    print("\n".join(lines))
    return 0


__all__ = ["add_parser", "run_outreach"]
