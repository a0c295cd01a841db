"""Button payloads go through one versioned codec (``helpline.payloads``)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpline.payloads import VERSION, Kind, Payload, decode, encode, is_


def test_every_kind_reads_back_what_it_wrote() -> None:
    assert VERSION == 1
    for kind in Kind:
        written = encode(kind, "a", 12, "b-c")
        assert decode(written) == Payload(kind, ("a", "12", "b-c"))
    # The form of version 1, which buttons already on people's screens carry.
    assert encode(Kind.CHOICE, 123, 4) == "c:123:4"
    assert encode(Kind.GLOBAL, "lang", "pt-BR") == "g:lang:pt-BR"
    assert encode(Kind.CLAIM, "claim", "AC34") == "hd:claim:AC34"
    assert is_("c:123:4", Kind.CHOICE, 123) and not is_("c:123:4", Kind.CHOICE, 12)
    assert decode("c:123:4") is not None and decode("c:123:4").number(1) == 4  # type: ignore[union-attr]


def test_a_field_that_could_be_misread_is_refused_when_written() -> None:
    for bad in ("a:b", "", "x" * 65, "two words", "line\nbreak"):
        with pytest.raises(ValueError):
            encode(Kind.GLOBAL, bad)


@given(st.text(max_size=300))
def test_anything_pressed_is_read_or_refused_never_an_error(payload: str) -> None:
    found = decode(payload)
    if found is not None:
        assert encode(found.kind, *found.fields) == payload
    assert decode("2~c:1:1") is None  # a later version's form is not taken for this one
