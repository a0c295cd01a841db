"""The desk's rule for where what a person does goes while their case is open
(``helpline.handoff.routing.route``), as properties over every combination of what it
reads, and over sequences of inbounds (the "menu" memory carried from one to the next)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpline.flow import commands
from helpline.handoff.routing import During, Route, Routed, route

KINDS = ("text", "button", "start", "unsupported", "timer", "desk")
YES_NO = st.sampled_from([None, "yes", "no"])

during = st.builds(
    During,
    kind=st.sampled_from(KINDS),
    command=st.sampled_from([None, *commands.NAMES]),
    later_asked=st.booleans(),
    later_pressed=YES_NO,
    later_typed=YES_NO,
    pending=st.booleans(),
    at_top=st.booleans(),
    idle=st.booleans(),
    menu_asked=st.booleans(),
    picks_option=st.booleans(),
)
LATER = (Route.LATER_YES, Route.LATER_NO, Route.LATER_AGAIN)
# Every case the rule can be asked (20,736 of them): small enough to check them all.
EVERY = [During(*values) for values in itertools.product(  # type: ignore[arg-type]
    KINDS, [None, *commands.NAMES], [False, True], *(([None, "yes", "no"],) * 2),
    *(([False, True],) * 5))]


def prop_a_global_command_always_stays_with_the_flows(d: During) -> None:
    if d.command is None:
        return
    routed = route(d)
    assert routed.route is Route.FLOWS
    # "menu" makes the next typed answer the menu's; other commands leave that as it was.
    assert routed.menu_asked == (d.menu_asked or d.command == "menu")


def prop_only_typed_text_ever_reaches_the_advocate(d: During) -> None:
    routed = route(d)
    if routed.route is Route.ADVOCATE:
        assert d.kind == "text" and d.command is None
        assert d.at_top and not d.pending and not d.menu_asked and not d.later_asked
        assert d.idle or not d.picks_option  # a menu option typed opens that flow


def prop_text_at_the_top_with_nothing_else_in_the_way_goes_to_the_advocate(d: During) -> None:
    plain = (d.kind == "text" and d.command is None and d.at_top and not d.pending
             and not d.menu_asked and not d.later_asked and (d.idle or not d.picks_option))
    assert (route(d).route is Route.ADVOCATE) == plain


def prop_inside_a_flow_or_at_a_confirmation_the_flows_answer(d: During) -> None:
    if d.kind in ("text", "unsupported") and (not d.at_top or d.pending):
        assert route(d) == Routed(Route.FLOWS, d.menu_asked or d.command == "menu")


def prop_buttons_go_to_the_flows_but_for_the_leave_a_message_answer(d: During) -> None:
    if d.kind != "button" or d.command is not None:
        return
    routed = route(d)
    if d.later_asked and d.later_pressed is not None:
        assert routed.route is (Route.LATER_YES if d.later_pressed == "yes"
                                else Route.LATER_NO)
    else:
        assert routed.route is Route.FLOWS
    assert routed.menu_asked == d.menu_asked  # a press never answers the menu's memory


def prop_leave_a_message_is_answered_only_while_it_is_asked(d: During) -> None:
    routed = route(d)
    if routed.route in LATER:
        assert d.later_asked
    if routed.route is Route.LATER_AGAIN:  # neither yes nor no: asked again, nothing sent
        assert d.kind == "unsupported" or (d.kind == "text" and d.later_typed is None)
    if routed.route in (Route.LATER_YES, Route.LATER_NO) and d.kind == "text":
        assert routed.route is (Route.LATER_YES if d.later_typed == "yes" else Route.LATER_NO)


def prop_a_photo_or_voice_note_is_never_passed_on(d: During) -> None:
    if d.kind == "unsupported":
        assert route(d).route in (Route.FLOWS, Route.TEXT_ONLY, Route.LATER_AGAIN)
    if route(d).route is Route.TEXT_ONLY:
        assert d.kind == "unsupported"


def prop_the_menu_memory_is_used_once(d: During) -> None:
    routed = route(d)
    if d.menu_asked and not routed.menu_asked:  # spent: by a typed answer at the top
        assert d.kind in ("text", "unsupported") and d.command is None and d.at_top
        assert routed.route is Route.FLOWS and not d.pending
    if routed.menu_asked and not d.menu_asked:
        assert d.command == "menu"


PROPERTIES = (
    prop_a_global_command_always_stays_with_the_flows,
    prop_only_typed_text_ever_reaches_the_advocate,
    prop_text_at_the_top_with_nothing_else_in_the_way_goes_to_the_advocate,
    prop_inside_a_flow_or_at_a_confirmation_the_flows_answer,
    prop_buttons_go_to_the_flows_but_for_the_leave_a_message_answer,
    prop_leave_a_message_is_answered_only_while_it_is_asked,
    prop_a_photo_or_voice_note_is_never_passed_on,
    prop_the_menu_memory_is_used_once,
)


@pytest.mark.parametrize("prop", PROPERTIES, ids=lambda f: f.__name__[5:])
def test_the_rule_over_every_case(prop: Callable[[During], None]) -> None:
    for d in EVERY:
        prop(d)


@given(during)
def test_the_rule_over_drawn_cases(d: During) -> None:
    for prop in PROPERTIES:
        prop(d)


@given(st.lists(st.sampled_from(["menu", "text", "button", "unsupported"]), max_size=12))
def test_after_menu_the_next_typed_answer_at_the_top_is_the_menus_then_the_advocates(
    inbounds: list[str]
) -> None:
    """A person at the top of the menu, with a case open: after "menu" exactly one typed
    answer goes to the flows; each typed text after that goes to the advocate again."""
    menu_asked = False
    for what in inbounds:
        d = During(kind="text" if what == "menu" else what,  # type: ignore[arg-type]
                   command="menu" if what == "menu" else None, at_top=True, idle=False,
                   menu_asked=menu_asked)
        routed = route(d)
        if what == "text":
            assert routed.route is (Route.FLOWS if menu_asked else Route.ADVOCATE)
        if what == "unsupported":
            assert routed.route is (Route.FLOWS if menu_asked else Route.TEXT_ONLY)
        if what in ("menu", "button"):
            assert routed.route is Route.FLOWS
        menu_asked = routed.menu_asked
    assert menu_asked == (bool(inbounds) and _menu_unanswered(inbounds))


def _menu_unanswered(inbounds: list[str]) -> bool:
    """Whether a "menu" in ``inbounds`` is not yet followed by a typed answer."""
    typed = [i for i, w in enumerate(inbounds) if w in ("text", "unsupported")]
    menus = [i for i, w in enumerate(inbounds) if w == "menu"]
    return bool(menus) and (not typed or typed[-1] < menus[-1])
