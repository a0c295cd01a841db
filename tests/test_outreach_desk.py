"""An advocate's "do not contact" from the desk (/dnc in the case's topic) puts the Signal
person's number on outreach's suppression list; a campaign made later leaves it out.
The desk rig of tests/test_handoff_signal.py, with outreach plugged in as helpline run
does (helpline.serve.install_outreach)."""

from __future__ import annotations

from helpline.outreach import install
from tests.test_handoff_signal import PERSON, STRANGER, Starter, start  # noqa: F401

DONE = "Marked do not contact: no outreach campaign will write to this number again."


async def test_an_advocate_marks_a_signal_person_do_not_contact(start: Starter  # noqa: F811
                                                                ) -> None:
    rig = await start()
    outreach = install(rig.app, rig.channel)
    rig.service.do_not_contact = outreach.do_not_contact
    await rig.request()
    await rig.topic_gets(1)  # the card
    skey = await outreach.repo.skey(PERSON)
    rig.advocate("/dnc", user=STRANGER)
    assert await rig.topic_gets(1) == ["Only advocates on the list can do that."]
    assert not await outreach.repo.is_suppressed(skey)
    rig.advocate("/dnc")  # any advocate on the list, claimed or not
    assert await rig.topic_gets(1) == [DONE]
    assert await outreach.repo.is_suppressed(skey)
    assert rig.new_for_person() == []  # the person is told nothing
    kept, suppressed = await outreach.repo.create(
        "later", "Hi.", [PERSON, "+12025550199"], rig.app.clock(), language="en",
        keep_days=30)
    assert (kept, suppressed) == (1, 1)


async def test_the_desk_s_list_of_commands_names_dnc_when_outreach_is_on(
        start: Starter) -> None:  # noqa: F811
    rig = await start()
    await rig.request()
    await rig.topic_gets(1)  # the card
    rig.advocate("/what")
    [without] = await rig.topic_gets(1)
    assert without.startswith("Commands: /close") and "/dnc" not in without
    outreach = install(rig.app, rig.channel)
    rig.service.do_not_contact = outreach.do_not_contact
    rig.advocate("/what")
    [listed] = await rig.topic_gets(1)
    assert listed.endswith("/dnc: no outreach campaign writes to this person's number again.")
