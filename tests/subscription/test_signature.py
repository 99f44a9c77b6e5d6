"""The bytes a Segment signature covers: the whole body, and for an array its first element
exactly as it appears in the body."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from subscription.signature import first_element, signed_texts

TEXT = st.text(st.characters(exclude_categories=("Cs",)))  # non-ASCII, written raw
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=10,
)
SPACE = st.text(alphabet=" \t\r\n", max_size=3)


@given(st.lists(JSON, min_size=1, max_size=4), SPACE, SPACE, st.booleans())
def test_the_first_element_is_found_byte_for_byte(
    items: list[Any], before: str, after: str, ascii_only: bool
) -> None:
    texts = [json.dumps(item, ensure_ascii=ascii_only) for item in items]
    body = f"{before}[{before}{texts[0]}{after}{''.join(',' + t for t in texts[1:])}]{after}"
    raw = body.encode("utf-8")
    assert first_element(raw.lstrip()) == texts[0].encode("utf-8")
    assert signed_texts(raw) == [raw, texts[0].encode("utf-8")]


def test_an_object_body_is_signed_whole_and_an_empty_array_has_no_first() -> None:
    assert signed_texts(b'{"type":"track"}') == [b'{"type":"track"}']
    assert signed_texts(b"[ ]") == [b"[ ]"]
    assert first_element(b"[\xff]") is None
