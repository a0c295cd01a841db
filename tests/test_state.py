"""The stored form of a conversation state: what is written is read back, what does not fit
is refused, and states written by earlier versions (a pydantic model's JSON) still load."""

from __future__ import annotations

import pytest

from helpline.state import Frame, Overlay, State

EARLIER = ('{"stack":[{"flow":"main","step":"menu"},{"flow":"resources","step":"age"}],'
           '"vars":{"age":31,"needs":["shelter","legal"],"city":"Leeds","ok":true,'
           '"score":2.5,"none":null},"turn":1800000012,"retries":1,"locale":"es",'
           '"pending":null,"overlay":{"owner":"resources","text":"Found 2",'
           '"choices":[["More","page:2"],["Carry on","next"]]},"seen_welcome":true,'
           '"last_seen":1800000000.5}')


def test_a_state_written_by_an_earlier_version_loads() -> None:
    state = State.from_json(EARLIER)
    assert state.stack == [Frame("main", "menu"), Frame("resources", "age")]
    assert state.vars == {"age": 31, "needs": ["shelter", "legal"], "city": "Leeds",
                          "ok": True, "score": 2.5, "none": None}
    assert isinstance(state.vars["age"], int) and isinstance(state.vars["ok"], bool)
    assert state.overlay == Overlay("resources", "Found 2", (("More", "page:2"),
                                                             ("Carry on", "next")))
    assert (state.turn, state.retries, state.locale, state.pending) == (1800000012, 1, "es",
                                                                       None)
    assert state.seen_welcome is True and state.last_seen == 1800000000.5
    assert State.from_json(state.to_json()) == state


def test_clone_is_independent_of_the_original() -> None:
    state = State.from_json(EARLIER)
    copy = state.clone()
    copy.stack.append(Frame("x", "y"))
    copy.vars["needs"].append("food")  # type: ignore[union-attr]
    copy.turn += 1
    assert state == State.from_json(EARLIER)
    assert copy != state


@pytest.mark.parametrize("bad", [
    "not json",
    "[]",
    '{"stack": [], "surprise": 1}',
    '{"stack": [{"flow": "main"}]}',
    '{"stack": [{"flow": "main", "step": 3}]}',
    '{"turn": "12"}',
    '{"turn": true}',
    '{"pending": "dance"}',
    '{"vars": {"a": {"nested": 1}}}',
    '{"vars": {"a": [1, 2]}}',
    '{"overlay": {"owner": "r", "text": "t", "choices": [["only one"]]}}',
    '{"seen_welcome": "yes"}',
    '{"features": []}',
    '{"features": {"resources": [1]}}',
    '{"features": {"resources": {"page": {"n": 1}}}}',
])
def test_a_state_that_does_not_fit_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        State.from_json(bad)


def test_a_fresh_state_round_trips() -> None:
    assert State.from_json(State().to_json()) == State()
    assert State.from_json(b'{}') == State()


def test_features_values_round_trip_apart_from_the_flow_variables() -> None:
    state = State.from_json(EARLIER)
    state.features["resources"] = {"found": ["a", "b"], "page": 1}
    state.features["handoff"] = {}  # nothing kept: not written
    data = state.to_dict()
    assert data["features"] == {"resources": {"found": ["a", "b"], "page": 1}}
    assert "found" not in data["vars"]
    back = State.from_json(state.to_json())
    assert back.features == {"resources": {"found": ["a", "b"], "page": 1}}
    assert back.vars == State.from_json(EARLIER).vars
    assert "features" not in State.from_json(EARLIER).to_dict()  # as before, when none


def test_a_clone_has_its_own_features_values() -> None:
    state = State(features={"resources": {"found": ["a"], "page": 0}})
    copy = state.clone()
    copy.features["resources"]["page"] = 2
    copy.features["resources"]["found"].append("b")  # type: ignore[union-attr]
    copy.features["handoff"] = {"menu": True}
    assert state.features == {"resources": {"found": ["a"], "page": 0}}
