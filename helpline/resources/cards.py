"""What a person reads about a service: the short label in a list, and the detail card.

Every text is marked with ``N_`` (counts with ``Nn_``) and translated here, at render time,
for the person's locale; times are Babel's ("2 hours ago" in the person's language).
Addresses of confidential locations never reach a card (they are not even stored).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_timedelta

from helpline.i18n import N_, Nn_, Plural, Translator, babel_locale, count_text
from helpline.resources.matching import Openings
from helpline.resources.model import DAYS, Capacity, Hours, LanguageTag, Service

LABEL_NAME_MAX = 40
TEXT_MAX = 600  # each free text of the directory on a card (Telegram allows 4096 in all)

# NOTE: a button label: the service's name, then how many are free and when that was counted.
T_LABEL_OPEN = N_("{name} — openings: {count} ({when})")
# NOTE: a button label: the count of free places is too old to trust.
T_LABEL_STALE = N_("{name} — call to confirm")
# NOTE: a button label: the service had no free places at the last count.
T_LABEL_FULL = N_("{name} — full ({when})")
# NOTE: a button label: {label} is one of the labels above (or the name), then how far the
# service is from the location the person shared, in whole kilometres.
T_LABEL_KM = N_("{label} — about {km} km")

T_OPEN = N_("Openings: {count}, updated {when}.")
T_STALE = N_("Openings: call to confirm (the last count was {when}).")
T_FULL = N_("No openings at the last count ({when}). Call to ask when there may be space.")

# Units of HSDS service_capacity that the bot knows how to count; others show as "3 (unit)".
UNITS: dict[str, Plural] = {
    "bed": Nn_("{n} bed", "{n} beds"),
    "place": Nn_("{n} place", "{n} places"),
    "room": Nn_("{n} room", "{n} rooms"),
    "appointment": Nn_("{n} appointment", "{n} appointments"),
    "slot": Nn_("{n} slot", "{n} slots"),
    "space": Nn_("{n} space", "{n} spaces"),
}
# NOTE: a count of something the directory names itself, e.g. "3 (family units)".
T_OTHER_UNIT = N_("{n} ({unit})")

T_FOR = N_("For: {who}.")
T_AGES_RANGE = N_("ages {low} to {high}")
T_AGES_FROM = N_("ages {low} and over")
T_AGES_UP_TO = N_("ages up to {high}")
GENDER_TEXTS = {
    "women": N_("women"),
    "men": N_("men"),
    "nonbinary": N_("non-binary people"),
}
T_FREE = N_("Free.")
T_COST = N_("Cost: {fees}")
T_OPEN_TODAY = N_("Open today: {hours}.")
T_OPEN_ALL_DAY = N_("Open 24 hours today.")
T_CLOSED_TODAY = N_("Closed today, according to the directory.")
T_HOURS_NOTE = N_("Hours: {note}")
T_PHONE = N_("Phone: {number}")
T_WEBSITE = N_("Website: {url}")
T_EMAIL = N_("Email: {email}")
T_ADDRESS = N_("Address: {address}")
T_ONLINE = N_("Online: {url}")
T_CONFIDENTIAL = N_(
    "The address is not shared, to keep the people staying there safe. Call them to arrange "
    "how to get there."
)
T_LANGUAGES = N_("Languages: {languages}")
T_INTERPRETING = N_("Interpreting: {text}")
T_BRING = N_("What to bring: {documents}")
T_NO_DOCUMENTS = N_("If you don't have these, call and ask: many services can still help.")
T_HOW_TO_START = N_("How to start: {text}")
T_ALERT = N_("Please note: {text}")


@dataclass(frozen=True)
class Context:
    """Who reads it and when: the translator, their locale, the time, the settings."""

    tr: Translator
    locale: str
    now: float
    stale_hours: float
    timezone: str

    def t(self, message: str, **values: object) -> str:
        text = self.tr.gettext(self.locale, message)
        return text.format(**values) if values else text

    def count(self, text: Plural, n: int) -> str:
        return count_text(self.tr, self.locale, text, n)

    def ago(self, at: float) -> str:
        code = self.locale if babel_locale(self.locale) is not None else "en"
        delta = timedelta(seconds=min(0.0, at - self.now))
        return format_timedelta(delta, add_direction=True, locale=code)


def capacity_count(ctx: Context, capacity: Capacity) -> str:
    unit = capacity.unit.strip().casefold()
    plural = UNITS.get(unit) or UNITS.get(unit.removesuffix("s"))
    if plural is not None:
        return ctx.count(plural, capacity.available)
    return ctx.t(T_OTHER_UNIT, n=capacity.available, unit=capacity.unit)


def label(ctx: Context, service: Service, state: Openings, km: float | None = None) -> str:
    """A button label; with ``km`` (only ever from a non-confidential location), how far."""
    text = _label(ctx, service, state)
    if km is None:
        return text
    return ctx.t(T_LABEL_KM, label=text, km=max(1, round(km)))


def _label(ctx: Context, service: Service, state: Openings) -> str:
    name = service.name
    if len(name) > LABEL_NAME_MAX:
        name = name[: LABEL_NAME_MAX - 1].rstrip() + "…"
    shown = state.shown
    if state.kind == "open" and shown is not None:
        return ctx.t(T_LABEL_OPEN, name=name, count=capacity_count(ctx, shown),
                     when=ctx.ago(shown.updated))
    if state.kind == "stale":
        return ctx.t(T_LABEL_STALE, name=name)
    if state.kind == "full" and shown is not None:
        return ctx.t(T_LABEL_FULL, name=name, when=ctx.ago(shown.updated))
    return name


def openings_line(ctx: Context, state: Openings) -> str | None:
    shown = state.shown
    if shown is None:
        return None
    if state.kind == "open":
        return ctx.t(T_OPEN, count=capacity_count(ctx, shown), when=ctx.ago(shown.updated))
    if state.kind == "stale":
        return ctx.t(T_STALE, when=ctx.ago(shown.updated))
    return ctx.t(T_FULL, when=ctx.ago(shown.updated))


def detail(ctx: Context, service: Service, state: Openings, *, no_documents: bool = False
           ) -> str:
    """The detail card: what they offer, openings, hours today, how to reach them, where,
    and what to bring."""
    title = service.name
    if service.organization and service.organization != service.name:
        title = f"{title} — {service.organization}"
    lines = [title]
    if service.description:
        lines.append(_clip(service.description))
    who = _who(ctx, service)
    if who:
        lines.append(ctx.t(T_FOR, who=who))
    if service.free:
        lines.append(ctx.t(T_FREE))
    elif service.fees:
        lines.append(ctx.t(T_COST, fees=_clip(service.fees)))
    for line in (openings_line(ctx, state), hours_today(ctx, service)):
        if line:
            lines.append(line)
    if service.alert:
        lines.append(ctx.t(T_ALERT, text=_clip(service.alert)))
    lines.extend(_reach(ctx, service))
    languages = [language_label(ctx, tag) for tag in service.languages]
    if languages:
        lines.append(ctx.t(T_LANGUAGES, languages=", ".join(dict.fromkeys(languages))))
    if service.interpretation:
        lines.append(ctx.t(T_INTERPRETING, text=_clip(service.interpretation)))
    if service.documents:
        lines.append(ctx.t(T_BRING, documents=_clip("; ".join(service.documents))))
        if no_documents:
            lines.append(ctx.t(T_NO_DOCUMENTS))
    if service.how_to_start:
        lines.append(ctx.t(T_HOW_TO_START, text=_clip(service.how_to_start)))
    return "\n".join(lines)


def _clip(text: str, limit: int = TEXT_MAX) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _who(ctx: Context, service: Service) -> str:
    parts = [ctx.t(GENDER_TEXTS[g]) for g in service.genders if g in GENDER_TEXTS]
    low, high = service.min_age, service.max_age
    if low is not None and high is not None and high < 120:
        parts.append(ctx.t(T_AGES_RANGE, low=f"{low:g}", high=f"{high:g}"))
    elif low is not None and low > 0:
        parts.append(ctx.t(T_AGES_FROM, low=f"{low:g}"))
    elif high is not None and high < 120:
        parts.append(ctx.t(T_AGES_UP_TO, high=f"{high:g}"))
    return ", ".join(parts)


def _reach(ctx: Context, service: Service) -> list[str]:
    lines = []
    for phone in service.phones:
        text = ctx.t(T_PHONE, number=phone.number)
        lines.append(f"{text} ({phone.description})" if phone.description else text)
    if service.url:
        lines.append(ctx.t(T_WEBSITE, url=service.url))
    if service.email:
        lines.append(ctx.t(T_EMAIL, email=service.email))
    said_private = False
    for loc in service.locations:
        if loc.confidential:
            if not said_private:
                lines.append(ctx.t(T_CONFIDENTIAL))
                said_private = True
        elif loc.address or loc.postcode:
            where = ", ".join(p for p in (loc.address, " ".join(
                q for q in (loc.city, loc.postcode) if q)) if p)
            lines.append(ctx.t(T_ADDRESS, address=where))
        elif loc.url:
            lines.append(ctx.t(T_ONLINE, url=loc.url))
    return lines


def language_label(ctx: Context, tag: LanguageTag) -> str:
    if tag.code:
        here = babel_locale(ctx.locale)
        base = tag.code.split("-")[0].lower()
        if here is not None and base in here.languages:
            name = str(here.languages[base])
            return name[:1].upper() + name[1:]
    return tag.name or tag.code or ""


# ------------------------------------------------------------------ hours


def hours_today(ctx: Context, service: Service) -> str | None:
    ranges: list[tuple[str, str]] = []
    structured = False
    for hours in service.hours:
        local = datetime.fromtimestamp(ctx.now, _zone(hours, service.timezone or ctx.timezone))
        today = local.date().isoformat()
        if (hours.valid_from and today < hours.valid_from) or (
                hours.valid_to and today > hours.valid_to):
            continue
        if not (hours.opens and hours.closes):
            continue
        structured = True
        if not hours.days or DAYS[local.weekday()] in hours.days:
            ranges.append((hours.opens, hours.closes))
    if ranges:
        if any(o == "00:00" and c in ("24:00", "23:59") for o, c in ranges):
            return ctx.t(T_OPEN_ALL_DAY)
        return ctx.t(T_OPEN_TODAY, hours=", ".join(f"{o}–{c}" for o, c in sorted(ranges)))
    if structured:
        return ctx.t(T_CLOSED_TODAY)
    note = next((h.note for h in service.hours if h.note), None)
    return ctx.t(T_HOURS_NOTE, note=_clip(note)) if note else None


def _zone(hours: Hours, name: str) -> timezone | ZoneInfo:
    if hours.utc_offset is not None:
        return timezone(timedelta(hours=hours.utc_offset))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC
