"""The console's part in the app (``helpline.feature``) when it is a desk: its upkeep each
poll (transcripts past their time, the state of messages that waited, automatic
assignment), and what its case pages are given of the relay (``Desking``). How ``helpline
run`` puts the desks together (``[console] desk``) is ``helpline.desks``'s."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from helpline.config import Settings
from helpline.console.desk import ConsoleDesk, Options
from helpline.console.schema import CONSOLE
from helpline.feature import Feature, Plugs, Services
from helpline.office_hours import OfficeHours
from helpline.resources.store import Directory
from helpline.store import Store


class ConsoleFeature(Feature[Store]):
    name = "console"
    part = CONSOLE

    def __init__(self, desk: ConsoleDesk) -> None:
        self.desk = desk

    def repository(self, store: Store) -> Store:
        return store

    def plug(self, services: Services[Store], plugs: Plugs) -> None:
        plugs.every("console-upkeep", self.desk.tidy)


@dataclass(frozen=True)
class Desking:
    """What the console's case pages work with: its desk, and what they show of the relay
    behind it (office hours, canned replies, the directory, the labels of what a person
    shares), given by whoever put the desks together (``helpline.desks``)."""

    desk: ConsoleDesk
    settings: Settings
    hours: OfficeHours
    canned: Mapping[str, str]  # key: English msgid
    gettext: Callable[[str | None, str], str]  # (locale, msgid) -> text
    directory: Directory
    share_labels: Mapping[str, str]
    # Whether outreach is on (the relay can mark a number "do not contact": /dnc).
    outreach: Callable[[], bool] = lambda: False


def options(settings: Settings) -> Options:
    c = settings.console
    return Options(keep_transcript_hours=c.keep_transcript_hours,
                   shared_reading=c.shared_reading, auto_assign=c.auto_assign,
                   default_capacity=c.default_capacity, idle_minutes=c.idle_minutes)
