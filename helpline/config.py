"""One Settings object from ``helpline.toml`` (``--config``, ``HELPLINE_CONFIG``, or
``./helpline.toml`` when present), then environment variables on top: ``HELPLINE_<KEY>`` for
top-level keys and ``HELPLINE_<SECTION>_<KEY>`` for keys in a section (lists as
comma-separated text). An unknown key or ``HELPLINE_*`` variable is an error that says which
one was probably meant.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from helpline import bundled
from helpline.channels.options import ChannelOptions, SignalOptions, TelegramOptions
from helpline.errors import ConfigError as ConfigError
from helpline.flow import commands

BUNDLED_FLOWS = bundled.FLOWS
BUNDLED_LOCALES = bundled.LOCALES
BUNDLED_DATA = bundled.DATA


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _words(name: str) -> Any:
    return Field(default_factory=lambda: list(commands.default_words(name)))


class Commands(_Section):
    """The words of each global command (``helpline.flow.commands``: one field each)."""

    quick_exit: list[str] = _words("quick_exit")
    quick_exit_reply: str = ""
    menu: list[str] = _words("menu")
    help: list[str] = _words("help")
    language: list[str] = _words("language")
    erase: list[str] = _words("erase")
    privacy: list[str] = _words("privacy")


class Conversation(_Section):
    first_flow: str = "welcome"
    home_flow: str = "main"
    resume_after_hours: float = Field(12.0, gt=0)
    # Safe times. A message the bot starts (a check-in; an advocate's reply once the person
    # has been quiet quiet_minutes) waits for the time the person said is safe (the flow
    # variable safe_time: "any", a window named in safe_windows, or "after_i_write") or
    # for their next message, at most hold_hours; after that it is dropped.
    quiet_minutes: float = Field(30.0, gt=0)
    hold_hours: float = Field(72.0, gt=0)
    safe_windows: dict[str, list[str]] = Field(default_factory=lambda: {
        "mornings": ["mon-sun 08:00-12:00"], "afternoons": ["mon-sun 12:00-17:00"],
        "evenings": ["mon-sun 17:00-21:00"]})

    @field_validator("safe_windows")
    @classmethod
    def _windows_parse(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        from helpline.office_hours import parse_shift

        for name, shifts in value.items():
            if name in ("any", "after_i_write"):
                raise ValueError(f"'{name}' is a safe_time value of its own; name the window "
                                 "otherwise")
            for shift in shifts:
                parse_shift(shift)
        return value


class Retention(_Section):
    conversation_days: float = Field(90.0, gt=0)
    message_id_hours: float = Field(48.0, gt=0)
    # A reply (or a desk post) the platform has not taken in this long is dropped, counted
    # as expired.
    reply_days: float = Field(7.0, gt=0)
    # Statistics (counts that identify no one) of weeks older than this are dropped.
    stats_days: float = Field(3 * 365.0, gt=0)
    case_days: float = Field(365.0, gt=0)
    purge_every_hours: float = Field(6.0, gt=0)


class Stats(_Section):
    # Count what happens (conversations, lookups, handoffs...) into buckets that identify
    # no one (helpline stats).
    enabled: bool = True
    # A count under this shows as "<5" in `helpline stats` (and totals that would reveal
    # it are hidden).
    min_count: int = Field(5, ge=1)
    # The flows whose start is counted ("flow_reached").
    flows: list[str] = Field(default_factory=lambda: [
        "advocate", "resources", "safety_tips", "emergency", "numbers", "checkin"])


class Delivery(_Section):
    retry_first_seconds: float = Field(2.0, gt=0)
    retry_max_seconds: float = Field(300.0, gt=0)
    # A turn's messages go out as one message where the channel allows (events.combined).
    combine_replies: bool = True


# The channels' sections are their options (helpline/channels/options.py): one model,
# read here and handed to the channel's factory (helpline/channels/registry.py).
Telegram = TelegramOptions
Signal = SignalOptions


class Workers(_Section):
    # Every ``helpline run`` of one PostgreSQL database serves at once (false: one serves,
    # the others stand by). Each takes Telegram's webhook requests (behind a load
    # balancer) and carries out its people's turns and replies, a person at a time across
    # all of them; one of them, the leader, also reads Signal (and Telegram when it polls)
    # and runs the timed jobs. docs/postgresql.md.
    together: bool = False


class Resources(_Section):
    # A directory file imported at start when the directory is empty ("" = none for
    # `helpline run`, the bundled fictional sample for `helpline chat`; "none" = never).
    seed: str = ""
    openings_stale_hours: float = Field(72.0, gt=0)
    # A flow step ("flow.step") whose text (hotline numbers) the no-results reply repeats.
    hotline_step: str = "numbers.numbers"


def _shifts(value: list[str]) -> list[str]:
    """Each entry a shift like "mon-fri 09:00-17:00" (office_hours.parse_shift says what is
    wrong)."""
    from helpline.office_hours import parse_shift

    for entry in value:
        parse_shift(entry)
    return value


class Handoff(_Section):
    # The staff Telegram supergroup with topics (its chat id, like -1001234567890); 0 = no
    # desk. Also HELPLINE_STAFF_CHAT.
    staff_chat: int = 0
    # Telegram user ids of the advocates who may claim cases. Also HELPLINE_ADVOCATES.
    advocates: list[int] = Field(default_factory=list)
    # Time zone of the schedule; "" = the top-level timezone.
    timezone: str = ""
    # Weekly shifts, e.g. ["mon-fri 09:00-17:00", "sat 10:00-14:00"]; empty = always staffed.
    hours: list[str] = Field(default_factory=list)
    # Days with no shift, as YYYY-MM-DD.
    holidays: list[str] = Field(default_factory=list)
    unclaimed_minutes: float = Field(30.0, gt=0)
    note_prefix: str = "!"
    canned: Path = BUNDLED_DATA / "canned.yaml"

    @field_validator("hours")
    @classmethod
    def _valid_hours(cls, value: list[str]) -> list[str]:
        return _shifts(value)

    @field_validator("holidays")
    @classmethod
    def _valid_holidays(cls, value: list[str]) -> list[str]:
        from datetime import date

        for entry in value:
            try:
                date.fromisoformat(entry)
            except ValueError as exc:
                raise ValueError(f"'{entry}' is not a date like 2025-12-25") from exc
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            if value:
                ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"'{value}' is not a time zone name (like Europe/Madrid or "
                             "UTC)") from exc
        return value


class Outreach(_Section):
    """Outreach campaigns on Signal (``helpline outreach``; docs/outreach.md)."""

    # New recipients written to per hour at most, with jitter (Signal limits accounts that
    # write to many new recipients; start low).
    per_hour: float = Field(20.0, gt=0, le=600)
    # No campaign sends in these windows ("DAYS HH:MM-HH:MM", in timezone; overnight works).
    quiet_hours: list[str] = Field(default_factory=lambda: ["mon-sun 21:00-09:00"])
    # At most this many campaign messages a day (in timezone), every campaign together.
    daily_cap: int = Field(100, ge=1)
    # The desk's cap: 0 = off; else send only while the open desk cases plus the replies
    # expected (reply_rate x sends of the last reply_hours not answered) stay under it.
    desk_capacity: int = Field(0, ge=0)
    reply_rate: float = Field(0.1, gt=0, le=1)
    reply_hours: float = Field(72.0, gt=0)
    # A campaign's numbers are deleted at close, or this long after its last send.
    keep_days: float = Field(30.0, gt=0)
    # Numbers written without a leading + are read as numbers of this region (ISO 3166
    # code, like US or ES); "" = every number must start with +.
    default_region: str = ""
    # The Telegram bot's username, for `helpline outreach link` ("" = asked of Telegram
    # with getMe, which needs the token).
    bot_username: str = ""

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_parse(cls, value: list[str]) -> list[str]:
        return _shifts(value)

    @field_validator("default_region")
    @classmethod
    def _region(cls, value: str) -> str:
        if value and not re.fullmatch(r"[A-Za-z]{2}", value):
            raise ValueError(f"'{value}' is not a region code like US, GB or ES")
        return value.upper()


class Console(_Section):
    """The advocate console (``helpline.console``): off unless ``enabled``."""

    enabled: bool = False
    # host:port it listens on (plain HTTP: put a TLS reverse proxy in front).
    listen: str = "127.0.0.1:8081"
    # The address advocates open, for the set-up links (https://console.example.org);
    # "" = http://<listen>.
    public_url: str = ""
    idle_minutes: float = Field(20.0, gt=0)
    session_hours: float = Field(12.0, gt=0)
    setup_hours: float = Field(24.0, gt=0)
    max_failures: int = Field(5, ge=1)
    lockout_minutes: float = Field(15.0, gt=0)
    # The name an authenticator app shows beside the codes.
    issuer: str = "Helpline console"
    # Where advocates answer cases: "telegram" (the Telegram desk of [handoff] alone; the
    # console shows no cases), "console" (the console alone), or "both" (every case on
    # both; a claim in one shows in the other).
    desk: Literal["telegram", "console", "both"] = "telegram"
    # How long a closed case's transcript stays in the console (encrypted); 0 = it goes
    # when the case closes. A person's quick exit or erase removes it at once regardless.
    keep_transcript_hours: float = Field(0.0, ge=0)
    # Whether advocates may read cases another advocate claimed.
    shared_reading: bool = False
    # Give the oldest waiting case to the least-loaded advocate on shift with room.
    auto_assign: bool = False
    # How many cases an advocate takes at once until they set their own.
    default_capacity: int = Field(3, ge=0, le=50)

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        from helpline.console.listen import parse_listen

        parse_listen(value)
        return value

    @field_validator("public_url")
    @classmethod
    def _web_address(cls, value: str) -> str:
        if value and not re.match(r"^https?://[^/?#\s]+/?$", value):
            raise ValueError(f"'{value}' is not a web address like "
                             "https://console.example.org (no path)")
        return value.rstrip("/")


class Settings(_Section):
    db: Path = Path("./var/helpline.db")
    # PostgreSQL instead of the SQLite file (postgresql://...); a URL given as ``db``
    # (HELPLINE_DB) lands here.
    database_url: str = ""
    secret_key: str = ""
    flows: Path = BUNDLED_FLOWS
    locales: Path = BUNDLED_LOCALES
    default_language: str = "en"
    languages: list[str] = Field(default_factory=lambda: ["en"])
    # Languages that may be enabled before their catalogue is complete (the missing texts
    # are shown in English). Any other enabled language must be complete.
    allow_incomplete: list[str] = Field(default_factory=list)
    timezone: str = "UTC"
    log_level: str = "INFO"
    # "text" (a line a person reads) or "json" (one object a line, for a log collector:
    # time, level, logger, message; helpline/logformat.py). Also HELPLINE_LOG_FORMAT.
    log_format: Literal["text", "json"] = "text"
    commands: Commands = Field(default_factory=Commands)
    conversation: Conversation = Field(default_factory=Conversation)
    retention: Retention = Field(default_factory=Retention)
    delivery: Delivery = Field(default_factory=Delivery)
    telegram: TelegramOptions = Field(default_factory=TelegramOptions)
    signal: SignalOptions = Field(default_factory=SignalOptions)
    resources: Resources = Field(default_factory=Resources)
    handoff: Handoff = Field(default_factory=Handoff)
    stats: Stats = Field(default_factory=Stats)
    console: Console = Field(default_factory=Console)
    outreach: Outreach = Field(default_factory=Outreach)
    workers: Workers = Field(default_factory=Workers)

    @field_validator("languages")
    @classmethod
    def _known_languages(cls, value: list[str]) -> list[str]:
        from helpline.i18n import babel_locale

        for code in value:
            if babel_locale(code) is None:
                raise ValueError(f"'{code}' is not a language code (use codes like en, es, "
                                 "fr, pt_BR)")
        return value

    @model_validator(mode="before")
    @classmethod
    def _database_url(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("db"), str) and data["db"].startswith(
                ("postgresql://", "postgres://")):
            data = {**data, "database_url": data["db"]}
            del data["db"]
        return data

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str) -> str:
        if value and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("a PostgreSQL URL begins with postgresql:// (for example "
                             "postgresql://helpline@db.internal/helpline)")
        return value

    @property
    def database(self) -> str:
        """What the store opens: the PostgreSQL URL, or the SQLite file."""
        return self.database_url or str(self.db)

    @property
    def on_postgres(self) -> bool:
        return bool(self.database_url)

    def has_database(self) -> bool:
        """Whether there is a database to open (a PostgreSQL one is made by its admin)."""
        return self.on_postgres or self.db.exists()

    @model_validator(mode="after")
    def _workers_together(self) -> Settings:
        if not self.workers.together:
            return self
        if not self.database_url:
            raise ValueError("workers.together needs PostgreSQL (set database_url): a SQLite "
                             "file is served by one process")
        t = self.telegram
        if t.token and t.webhook_url and not t.webhook_secret:
            raise ValueError("workers.together with a Telegram webhook needs "
                             "telegram.webhook_secret, the same for every worker (each checks "
                             "it on every request)")
        return self

    @model_validator(mode="after")
    def _default_is_enabled(self) -> Settings:
        if self.default_language not in self.languages:
            raise ValueError(f"default_language '{self.default_language}' is not one of "
                             f"languages ({', '.join(self.languages)}); add it there or "
                             "choose one of them")
        return self

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"'{value}' is not a time zone name (like Europe/Madrid or "
                             "UTC)") from exc
        return value

    def channel_options(self) -> dict[str, ChannelOptions]:
        """Each channel's options by the channel's name (its section): every section that
        is a channel's options, this class's or a subclass's."""
        return {name: value for name in type(self).model_fields
                if isinstance(value := getattr(self, name), ChannelOptions)}


SECTIONS = {name for name, f in Settings.model_fields.items()
            if isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel)}
# Short environment names kept for operators: HELPLINE_STAFF_CHAT, HELPLINE_ADVOCATES.
ENV_ALIASES = {"staff_chat": ("handoff", "staff_chat"), "advocates": ("handoff", "advocates")}


LOCAL_CONFIG = "helpline.toml"
# What Kubernetes (and Docker's legacy links) set for a service named "helpline": not ours.
SERVICE_LINK = re.compile(r"^HELPLINE_(SERVICE_HOST|SERVICE_PORT(_\w+)?|PORT(_\d+_(TCP|UDP|SCTP)"
                          r"(_PROTO|_PORT|_ADDR)?)?)$")


def config_path(path: str | Path | None = None, environ: Mapping[str, str] | None = None,
                cwd: Path | None = None) -> Path | None:
    """The file that is read: ``--config``, else ``HELPLINE_CONFIG``, else
    ``./helpline.toml`` when there is one, else none."""
    env = os.environ if environ is None else environ
    chosen = path or env.get("HELPLINE_CONFIG")
    if chosen:
        return Path(chosen)
    local = (cwd or Path.cwd()) / LOCAL_CONFIG
    return local if local.is_file() else None


def load_settings(path: str | Path | None = None,
                  environ: Mapping[str, str] | None = None,
                  cwd: Path | None = None) -> Settings:
    """Read the TOML file (if any), apply environment overrides, validate; or ConfigError."""
    env = os.environ if environ is None else environ
    path = config_path(path, env, cwd)
    data: dict[str, Any] = {}
    source = "environment"
    if path:
        source = str(path)
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"{path}: config file not found; check --config or "
                              "HELPLINE_CONFIG") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    unknown = [key for key in sorted(env) if key.startswith("HELPLINE_")
               and key not in environment_names() and not SERVICE_LINK.match(key)]
    if unknown:
        raise ConfigError("environment: " + "; ".join(_unknown_variable(k) for k in unknown))
    _apply_env(data, env)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: " + "; ".join(_explain(e) for e in exc.errors())) from exc


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> None:
    for key, raw in env.items():
        if not key.startswith("HELPLINE_") or key == "HELPLINE_CONFIG":
            continue
        name = key[len("HELPLINE_"):].lower()
        section = next((s for s in SECTIONS if name.startswith(s + "_")), None)
        if section is not None:
            field = name[len(section) + 1:]
            model = Settings.model_fields[section].annotation
            assert isinstance(model, type) and issubclass(model, BaseModel)
            if field in model.model_fields:
                data.setdefault(section, {})[field] = _env_value(model, field, raw)
        elif name in Settings.model_fields and name not in SECTIONS:
            data[name] = _env_value(Settings, name, raw)
        elif name in ENV_ALIASES:
            section, field = ENV_ALIASES[name]
            data.setdefault(section, {})[field] = _env_value(Handoff, field, raw)


def environment_names() -> set[str]:
    """Every ``HELPLINE_*`` variable that means something."""
    names = {"HELPLINE_CONFIG"}
    for name, field in Settings.model_fields.items():
        if name in SECTIONS:
            model = field.annotation
            assert isinstance(model, type) and issubclass(model, BaseModel)
            names.update(f"HELPLINE_{name}_{sub}".upper() for sub in model.model_fields)
        else:
            names.add(f"HELPLINE_{name}".upper())
    names.update(f"HELPLINE_{alias}".upper() for alias in ENV_ALIASES)
    return names


def _unknown_variable(key: str) -> str:
    known = {name.removeprefix("HELPLINE_"): name for name in environment_names()}
    close = difflib.get_close_matches(key.removeprefix("HELPLINE_"), sorted(known), n=1)
    hint = (f"; did you mean {known[close[0]]}?" if close
            else "; unset it (helpline.example.toml lists every setting)")
    return f"unknown variable {key}{hint}"


def _env_value(model: type[BaseModel], field: str, raw: str) -> Any:
    annotation = str(model.model_fields[field].annotation)
    if annotation.startswith("list"):
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw


def _explain(error: Any) -> str:
    loc = ".".join(str(p) for p in error["loc"])
    if error["type"] == "extra_forbidden":
        parent: type[BaseModel] = Settings
        if len(error["loc"]) > 1:
            annotation = Settings.model_fields.get(str(error["loc"][0]))
            if annotation is not None and isinstance(annotation.annotation, type):
                parent = annotation.annotation
        close = difflib.get_close_matches(str(error["loc"][-1]), list(parent.model_fields), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return f"unknown key '{loc}'{hint}"
    if not loc:  # a check across keys: its message names them
        return str(error["msg"]).removeprefix("Value error, ")
    return f"'{loc}': {error['msg']}"


def flow_roots(settings: Settings) -> tuple[str, str]:
    """The first and the home flow: every other flow must be reached from one of them."""
    return (settings.conversation.first_flow, settings.conversation.home_flow)
