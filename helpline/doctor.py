"""``helpline doctor``: what an operator can get wrong, one line per item, ok or what to do.

``offline_findings`` is what needs no network: the config, the key, the database (writable,
schema version, opened by this key), the flows, texts still holding the bundled examples,
each enabled language's translations, the service directory and the desk settings.
``helpline run`` prints its warnings and errors at start and refuses to start on an error.
``diagnose`` adds what the platforms say: the Telegram token, webhook and staff group, the
Signal bridge and number.

Nothing here changes anything: the database is opened read-only (a database an older
helpline made is reported, and upgraded only by ``helpline run``). No line holds a secret,
a message text or anyone's id.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import time
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

from helpline.channels import registry
from helpline.config import ConfigError, Settings, flow_roots
from helpline.findings import Finding, error, ok, warning
from helpline.flow.loader import FlowSet, check_flows, step_texts
from helpline.privacy import MIN_SECRET_LENGTH, SecretError, Vault

MAKE_KEY = "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"
# Texts the bundled flows ship as examples for the organisation to replace.
EXAMPLE_TEXT = re.compile(r"\(example\)|should replace this", re.IGNORECASE)


def has_errors(findings: Iterable[Finding]) -> bool:
    return any(f.level == "error" for f in findings)


# ---------------------------------------------------------------- config and key


def check_config(config_file: Path | None) -> Finding:
    if config_file is None:
        return ok("config", "no helpline.toml here, nor --config or HELPLINE_CONFIG: "
                  "defaults and HELPLINE_* variables")
    return ok("config", f"read {config_file} (HELPLINE_* variables win over it)")


def check_key(settings: Settings) -> tuple[Finding, Vault | None]:
    if not settings.secret_key:
        return error("key", f"HELPLINE_SECRET_KEY is not set; make one with {MAKE_KEY}, keep "
                     "a copy offline (docs/deploy.md, Key custody)"), None
    try:
        vault = Vault(settings.secret_key)
    except SecretError:
        return error("key", f"the secret key has fewer than {MIN_SECRET_LENGTH} characters; "
                     f"make one with {MAKE_KEY} (only for a new database: a database keeps "
                     "needing the key it was made with)"), None
    return ok("key", f"set, {len(settings.secret_key)} characters"), vault


# ---------------------------------------------------------------- database


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)


def check_database(settings: Settings, vault: Vault | None, retention: bool = True
                   ) -> list[Finding]:
    from helpline.parts import ALL
    from helpline.store.database import KEY_MISMATCH, encrypted_columns, key_matches
    from helpline.store.schema import schema_state

    if settings.on_postgres:
        return check_postgres(settings, vault)
    path = settings.db
    folder = path.parent
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if not path.exists():
        if existing is None or not os.access(existing, os.W_OK | os.X_OK):
            return [error("database", f"{path} cannot be created: {existing or folder} is not "
                          "writable by this user; create the folder for it or set HELPLINE_DB")]
        return [ok("database", f"{path} does not exist yet; helpline run creates it")]
    if not os.access(path, os.R_OK | os.W_OK) or not os.access(folder, os.W_OK | os.X_OK):
        return [error("database", f"{path} (or its folder, which keeps the -wal file) is not "
                      "writable by this user; fix the owner or run as the user who owns it")]
    try:
        with closing(_read_only(path)) as db:
            state = schema_state(db, ALL)
            matches = (key_matches(db, vault, encrypted_columns(ALL))
                       if vault is not None and state is not None else None)
    except sqlite3.DatabaseError as exc:
        return [error("database", f"{path} cannot be read as a helpline database "
                      f"({type(exc).__name__}); restore it from a backup (docs/deploy.md)")]
    found: list[Finding] = []
    if state is None:
        found.append(ok("database", f"{path} writable, empty; helpline run creates its tables"))
    elif state.newer:
        found.append(error("database", f"{path} has tables of a newer helpline "
                           f"({', '.join(state.newer)}); install the newer helpline again or "
                           "restore a backup made with this one"))
    elif state.behind:
        found.append(warning("database", f"{path} has tables to upgrade "
                             f"({', '.join(state.behind)}); helpline run upgrades them at "
                             "start: back it up first (deploy/backup)"))
    else:
        found.append(ok("database", f"{path} writable, schema {state.describe()}"))
    if matches is False:
        found.append(error("key", KEY_MISMATCH))
    elif matches:
        found.append(ok("key", "opens the stored conversations"))
        if retention and state is not None and not state.behind and not state.newer:
            found.extend(check_retention(settings))
    return found


if TYPE_CHECKING:
    from helpline.store.postgres import PgAsync


def check_postgres(settings: Settings, vault: Vault | None) -> list[Finding]:
    """The PostgreSQL database: reachable, its schema, the key (read only; in a thread of
    its own, so that this works inside a running event loop too)."""
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, _check_postgres(settings.database_url, vault)).result()


async def _check_postgres(url: str, vault: Vault | None) -> list[Finding]:
    import asyncpg

    from helpline.parts import ALL
    from helpline.store.database import KEY_MISMATCH, encrypted_columns, key_matches_async
    from helpline.store.postgres import PgAsync

    try:
        raw = await asyncpg.connect(url, timeout=10)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return [error("database", f"PostgreSQL cannot be reached ({type(exc).__name__}); "
                      "check HELPLINE_DB and that the server is running and lets this user in")]
    conn = PgAsync(raw)
    try:
        rows = await conn.execute_fetchall(
            "SELECT part, version FROM schema_parts") if await _has_parts(conn) else []
        versions = {str(r[0]): int(r[1]) for r in rows}
        matches = (await key_matches_async(conn, vault, encrypted_columns(ALL))
                   if vault is not None and versions else None)
    except asyncpg.PostgresError as exc:  # e.g. a user who may not read the tables
        return [error("database", f"PostgreSQL refused to be read ({type(exc).__name__}); "
                      "check that HELPLINE_DB's user owns helpline's database or schema")]
    finally:
        await conn.close()
    found: list[Finding] = []
    known = {p.name: p.latest for p in ALL}
    newer = [n for n, v in versions.items() if n not in known or v > known[n]]
    behind = [n for n, latest in known.items() if versions.get(n, 0) < latest]
    if not versions:
        found.append(ok("database", "PostgreSQL reachable, empty; helpline run creates its "
                        "tables"))
    elif newer:
        found.append(error("database", f"PostgreSQL has tables of a newer helpline "
                           f"({', '.join(newer)}); install the newer helpline again"))
    elif behind:
        found.append(warning("database", f"PostgreSQL has tables to upgrade "
                             f"({', '.join(behind)}); helpline run upgrades them at start: "
                             "take a pg_dump first (docs/postgresql.md)"))
    else:
        found.append(ok("database", "PostgreSQL reachable, schema "
                        + ", ".join(f"{n} {v}" for n, v in versions.items())))
    if matches is False:
        found.append(error("key", KEY_MISMATCH))
    elif matches:
        found.append(ok("key", "opens the stored conversations"))
    return found


async def _has_parts(conn: PgAsync) -> bool:
    from helpline.store.schema import table_names

    return "schema_parts" in await table_names(conn)


def check_retention(settings: Settings) -> list[Finding]:
    """Anything kept past its period (helpline.retention), on a database this helpline can
    open as it is (its schema current, the key its own): opened in a thread of its own, so
    that this works inside a running event loop too. Nothing is written (a dry run)."""
    import concurrent.futures

    from helpline import retention

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        counts = pool.submit(asyncio.run, retention.overdue(settings, settings.secret_key)
                             ).result()
    past = {k: n for k, n in counts.items() if n}
    if not past:
        return [ok("retention", "nothing is kept past its period")]
    listed = ", ".join(f"{n} {k}" for k, n in past.items())
    return [warning("retention", f"kept past its period: {listed}; the bot purges every "
                    f"{settings.retention.purge_every_hours:g} hours while it runs, or run "
                    "helpline purge (helpline retention check lists them)")]


# ---------------------------------------------------------------- flows and languages


def check_flows_folder(settings: Settings) -> tuple[list[Finding], FlowSet | None]:
    flowset, problems = check_flows(settings.flows, flow_roots(settings))
    if problems:
        return [error("flows", f"{len(problems)} problem(s) in {settings.flows}, the first: "
                      f"{problems[0]}; helpline flows check lists them all")], None
    return [ok("flows", f"{len(flowset.flows)} flows in {settings.flows}")], flowset


def check_examples(flowset: FlowSet) -> list[Finding]:
    found: list[Finding] = []
    for flow_id, flow in sorted(flowset.flows.items()):
        source = flowset.sources[flow_id]
        for step_id, step in flow.steps.items():
            for keys, text in step_texts(step):
                if EXAMPLE_TEXT.search(text):
                    where = source.where("steps", step_id, *keys)
                    line = next(t for t in text.splitlines() if EXAMPLE_TEXT.search(t))
                    found.append(warning("flows", f"{source.path}:{where.line}: step "
                                         f"'{flow_id}.{step_id}' still has an example text "
                                         f"({line.strip()!r}); write your organisation's own "
                                         "(and its translations)"))
    return found


def check_languages(settings: Settings) -> list[Finding]:
    from helpline.i18n import SOURCE_LANGUAGE, language_name
    from helpline.i18n_check import build_template, check_catalogs, command_words

    others = [code for code in settings.languages if code != SOURCE_LANGUAGE]
    if not others:
        return [ok("languages", f"{', '.join(settings.languages)} (no catalogue needed)")]
    template = build_template(settings.flows, settings.locales.parent, settings.handoff.canned)
    reports = check_catalogs(settings.locales, template, others, command_words(settings))
    found: list[Finding] = []
    for report in reports:
        if report.code not in others:
            continue  # a catalogue that is not enabled
        name = f"language {report.code} ({language_name(report.code)})"
        if report.errors:
            found.append(error(name, f"{len(report.errors)} error(s) in {report.path}, the "
                               f"first: {report.errors[0].message}; helpline flows check "
                               "lists them"))
            continue
        missing, fuzzy = len(report.missing), len(report.fuzzy)
        if not missing and not fuzzy:
            found.append(ok(name, f"all {report.total} texts translated"))
            continue
        done = report.total - missing - fuzzy
        what = (f"{done} of {report.total} texts translated ({missing} missing, {fuzzy} "
                f"fuzzy; the first: {(report.missing or report.fuzzy)[0]})")
        if report.code in settings.allow_incomplete:
            found.append(warning(name, f"{what}; shown in English where missing "
                                 "(allow_incomplete)"))
        else:
            found.append(error(name, f"{what}; translate them (helpline flows check --strict "
                               f"lists them), or add '{report.code}' to allow_incomplete to "
                               "offer it as it is"))
    return found


# ---------------------------------------------------------------- directory and desk


def check_directory(settings: Settings, now: float) -> list[Finding]:
    if settings.on_postgres:
        return []  # read from the SQLite file only, so far (docs/postgresql.md)
    path = settings.db
    seed = settings.resources.seed
    services = fictional = stale = 0
    if path.exists():
        try:
            with closing(_read_only(path)) as db:
                services = int(db.execute("SELECT COUNT(*) FROM services").fetchone()[0])
                fictional = int(db.execute(
                    "SELECT COUNT(*) FROM directory_sources WHERE fictional = 1").fetchone()[0])
                limit = now - settings.resources.openings_stale_hours * 3600
                stale = int(db.execute(
                    "SELECT COUNT(DISTINCT service_id) FROM service_capacity "
                    "WHERE updated_at < ?", (limit,)).fetchone()[0])
        except sqlite3.DatabaseError:
            return []  # the database line says what is wrong
    if not services:
        if seed and seed != "none":
            return [ok("directory", f"empty; {seed} is imported at start (resources.seed)")]
        return [warning("directory", "the service directory is empty: 'Find a service' finds "
                        "nothing; import yours with helpline resources import PATH")]
    found: list[Finding] = []
    if fictional:
        found.append(warning("directory", "it holds the fictional sample directory; import "
                             "your own services (helpline resources import PATH) before "
                             "going live"))
    else:
        found.append(ok("directory", f"{services} services"))
    if stale:
        hours = settings.resources.openings_stale_hours
        found.append(warning("directory", f"{stale} service(s) have openings counted more "
                             f"than {hours:g} h ago (shown as 'call to confirm'); count again "
                             "with helpline resources openings SERVICE_ID N"))
    return found


def check_desk(settings: Settings) -> list[Finding]:
    handoff = settings.handoff
    console = settings.console
    if not handoff.staff_chat and console.enabled and console.desk != "telegram":
        return [ok("desk", "the console is the advocate desk ([console] desk)")]
    if not handoff.staff_chat:
        return [warning("desk", "no advocate desk (handoff.staff_chat, HELPLINE_STAFF_CHAT): "
                        "nobody can answer 'Talk to a person'; see docs/deploy.md, Advocate "
                        "desk")]
    found: list[Finding] = []
    if not settings.telegram.token:
        found.append(error("desk", "handoff.staff_chat is set but Telegram is not "
                           "(HELPLINE_TELEGRAM_TOKEN): the desk runs in a Telegram group"))
    if handoff.staff_chat > 0:
        found.append(error("desk", "handoff.staff_chat is a person's chat, not a group (group "
                           "ids are negative, like -1001234567890); find it with helpline "
                           "telegram ids"))
    if not handoff.advocates and console.enabled and console.desk == "both":
        found.append(ok("desk", "no Telegram advocates listed: cases are claimed in the "
                        "console ([console] desk = both)"))
    elif not handoff.advocates:
        found.append(warning("desk", "no advocates are listed (handoff.advocates, "
                             "HELPLINE_ADVOCATES): nobody can claim cases; find their ids "
                             "with helpline telegram ids"))
    else:
        found.append(ok("desk", f"{len(handoff.advocates)} advocate(s) listed"))
    return found


def check_channels_configured(settings: Settings) -> list[Finding]:
    found: list[Finding] = []
    options = settings.channel_options()
    for name, given in options.items():
        if not given.configured():
            continue
        try:
            given.checked()
        except ConfigError as exc:
            found.append(error(name, str(exc)))
    if not any(given.configured() for given in options.values()):
        found.append(error("channels", "no channel configured; "
                           + registry.switched_on_by(options)))
    return found


# ---------------------------------------------------------------- all of it


def offline_findings(settings: Settings, config_file: Path | None,
                     now: float | None = None, flows: bool = True) -> list[Finding]:
    """Every check that needs no network, in the order doctor prints them."""
    found = [check_config(config_file)]
    key, vault = check_key(settings)
    found.append(key)
    # At `helpline run`'s start (flows=False) the retention check is left out: the bot
    # purges as it runs.
    found.extend(check_database(settings, vault, retention=flows))
    if flows:
        flow_findings, flowset = check_flows_folder(settings)
        found.extend(flow_findings)
        if flowset is not None:
            found.extend(check_examples(flowset))
    else:
        flowset, _ = check_flows(settings.flows, flow_roots(settings))
        found.extend(check_examples(flowset))
    found.extend(check_languages(settings))
    found.extend(check_directory(settings, time.time() if now is None else now))
    found.extend(check_desk(settings))
    found.extend(check_channels_configured(settings))
    from helpline.console.doctor import check_console

    found.extend(check_console(settings))
    return found


async def online_findings(settings: Settings) -> list[Finding]:
    """What the platforms say (each check skipped when its channel is not configured)."""
    from helpline.serve import channel_services

    return await registry.check_channels(settings.channel_options(),
                                         channel_services(settings))


async def diagnose(settings: Settings, config_file: Path | None,
                   now: float | None = None) -> list[Finding]:
    return [*offline_findings(settings, config_file, now), *await online_findings(settings)]


__all__ = ["Finding", "diagnose", "has_errors", "offline_findings", "online_findings"]
