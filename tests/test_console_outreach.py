"""The console's outreach page: supervisors read each campaign's status as `helpline
outreach status` prints it (no number anywhere); advocates cannot open it."""

from __future__ import annotations

from pathlib import Path

from helpline.console.web import OutreachStatus
from helpline.outreach.store import Campaigns
from helpline.serve import outreach_lines
from helpline.store import Store
from tests.conftest import make_settings
from tests.console_rig import advocate, console_rig

NUMBER = "+12025550143"


async def test_supervisors_read_the_campaigns_status_and_advocates_do_not(
        tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    repos: list[Campaigns] = []

    def lines(store: Store) -> OutreachStatus:
        repos.append(Campaigns(store))
        return outreach_lines(settings, repos[0])

    async with console_rig(tmp_path, outreach=lines) as rig:
        async with advocate(rig, "sam", "supervisor") as sam:
            status, page = await sam.get("/outreach")
            assert status == 200 and "no campaigns" in page
            await repos[0].create("spring-leaflets", "Hi, are you OK?", [NUMBER],
                                  rig.clock(), language="en", keep_days=30)
            status, page = await sam.get("/outreach")
            assert status == 200 and "spring-leaflets: ready (en)" in page
            assert NUMBER not in page and NUMBER[2:] not in page
        async with advocate(rig, "ada") as ada:
            status, page = await ada.get("/outreach")
            assert status in (302, 303, 403) and "spring-leaflets" not in page
