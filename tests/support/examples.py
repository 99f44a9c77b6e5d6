"""How many examples a property test runs: its full count in `make test`, a tenth in the fast
tier (`make check` selects the `check` profile, registered in conftest.py)."""

from __future__ import annotations

from hypothesis import settings

HYPOTHESIS_DEFAULT = 100


def examples(full: int) -> int:
    """`full` under the default profile; scaled like the selected profile's `max_examples`."""
    return max(10, full * settings.default.max_examples // HYPOTHESIS_DEFAULT)
