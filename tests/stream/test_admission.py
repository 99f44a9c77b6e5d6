"""The admission rule, over any signed webhook: forwarded exactly when it names one of our
tenants, is in the mode we take, and was made inside the window; never an exception."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from common.outcomes import Outcome
from stream.admission import HOUR_MS, Admission, admit

NOW = 1_800_000_000_000
POLICIES = st.builds(
    Admission,
    tenants=st.frozensets(st.sampled_from(["acme", "acme_test", "b-2"]), min_size=1),
    live=st.sampled_from(["any", "live", "test"]),
    max_age_ms=st.integers(1, 400 * HOUR_MS),
    future_skew_ms=st.integers(0, 3_600_000),
)
ALIASES = st.one_of(
    st.sampled_from(["acme", "acme_test", "b-2", "ACME", "acme ", "other"]),
    st.text(max_size=80),
    st.none(),
    st.integers(),
)
WEBHOOKS = st.fixed_dictionaries(
    {
        "tenantAlias": ALIASES,
        "live": st.one_of(st.booleans(), st.none(), st.just("true")),
        "created": st.one_of(
            st.integers(NOW - 500 * HOUR_MS, NOW + 2 * HOUR_MS),
            st.integers(),  # any JSON integer: past a float's range too
            st.integers(-(10**4000), 10**4000),
        ),
    }
)


@given(WEBHOOKS, POLICIES)
def test_forwarded_exactly_when_ours_in_mode_and_in_window(
    webhook: dict[str, Any], policy: Admission
) -> None:
    dropped = admit(webhook, policy, NOW)
    ours = webhook["tenantAlias"] in policy.tenants
    mode = policy.live == "any" or webhook["live"] is (policy.live == "live")
    window = NOW - policy.max_age_ms <= webhook["created"] <= NOW + policy.future_skew_ms
    assert (dropped is None) == (ours and mode and window)
    if dropped is not None:
        assert dropped.reason.outcome is Outcome.IGNORED
        assert len(dropped.tenant_alias) <= 64
        assert len(dropped.detail) <= 80
        if not ours:
            assert dropped.reason == "other_tenant"
