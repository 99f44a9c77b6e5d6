"""Property tests: no email address reaches a log line, wherever it sits in a value."""

from __future__ import annotations

import json
from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st

from common import logs

local_parts = st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,20}", fullmatch=True)
domains = st.from_regex(r"[a-z0-9-]{1,12}(\.[a-z0-9-]{1,12}){0,2}\.[a-z]{2,6}", fullmatch=True)
emails = st.builds(lambda local, domain: f"{local}@{domain}", local_parts, domains)
filler = st.text(st.characters(exclude_characters="@%"), max_size=20)


@st.composite
def texts_with_an_email(draw: st.DrawFn) -> tuple[str, str]:
    email = draw(emails)
    shown = draw(st.sampled_from([email, quote(email, safe="")]))
    separator = st.sampled_from([" ", "/", '"', "<", ":", ",", "="])
    text = draw(filler) + draw(separator) + shown + draw(separator) + draw(filler)
    return text, email


def nested(text: str) -> st.SearchStrategy:
    return st.recursive(
        st.just(text),
        lambda children: st.one_of(
            st.lists(children, min_size=1, max_size=3),
            st.dictionaries(st.sampled_from(["a", "email", "customFields"]), children, min_size=1),
        ),
        max_leaves=5,
    )


@given(texts_with_an_email())
def test_no_full_address_survives_in_a_text(case: tuple[str, str]) -> None:
    text, email = case
    redacted = logs.redact_emails(text)
    assert email not in redacted
    assert quote(email, safe="") not in redacted
    assert email.split("@")[1] in redacted, "the domain stays, to recognise the tenant's users"


@given(st.data())
def test_no_full_address_survives_at_any_depth(data: st.DataObject) -> None:
    text, email = data.draw(texts_with_an_email())
    value = data.draw(nested(text))
    assert email not in json.dumps(logs.redact_emails(value), ensure_ascii=False)


@given(st.text(st.characters(exclude_characters="@%"), max_size=200))
def test_text_without_an_address_is_left_alone(text: str) -> None:
    assert logs.redact_emails(text) == text
