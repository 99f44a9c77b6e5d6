"""Shared helpers for the mapper tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from mapper import MappingOptions, Plan, map_message

# A fixed "now" keeps the timestamp window deterministic.
NOW = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)


def plan_for(message: dict[str, Any], **options: Any) -> Plan:
    return map_message(message, MappingOptions(**options), now=NOW)


@pytest.fixture
def now() -> datetime:
    return NOW
