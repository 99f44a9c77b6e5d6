"""Hypothesis strategies the property tests share: any text (lone surrogates included), long
texts, and JSON values of every shape; and the health checks their large inputs trip."""

from __future__ import annotations

from hypothesis import HealthCheck
from hypothesis import strategies as st

# Long texts and wide objects are the point of these tests, not a mistake of the strategy.
LARGE_INPUTS = [HealthCheck.too_slow, HealthCheck.data_too_large]

# Text including lone surrogates, which JSON escapes can carry but UTF-8 cannot.
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=300)
long_text = st.one_of(
    any_text, st.text(st.sampled_from("aé€🎉\U0010ffff"), min_size=1000, max_size=3000)
)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    long_text,
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(any_text, children, max_size=5)
    ),
    max_leaves=25,
)
