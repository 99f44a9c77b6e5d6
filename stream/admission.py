"""Which correctly signed webhooks are ours to forward: our tenant, the mode we take, recent.

SaaSquatch signs every tenant's webhooks with the same keys, so a valid signature proves only
"from SaaSquatch": anyone with a tenant of their own (a free test tenant will do) can subscribe
our URL. The tenant alias, the `live` flag and `created` are inside the signed body, so they can
be trusted once the signature is checked. A webhook that is not ours is answered 200 and
dropped (a 4xx would make SaaSquatch retry it hourly for three days). Pure: no I/O, no clock of
its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from common.outcomes import Reason

LiveMode = Literal["any", "live", "test"]
HOUR_MS = 3_600_000
_MODES = {True: "a live tenant's", False: "a test tenant's"}


@dataclass(frozen=True, slots=True)
class Admission:
    """What the receiver takes: `tenants` (aliases, exact), `live` (`any`, or only live or only
    test tenants' webhooks), and the window around now that `created` must fall in."""

    tenants: frozenset[str]
    live: LiveMode = "any"
    max_age_ms: int = 74 * HOUR_MS
    future_skew_ms: int = 5 * 60_000


@dataclass(frozen=True, slots=True)
class Dropped:
    """Why a signed webhook is not forwarded: the reason, a line for the log, and the tenant
    alias it named (bounded: it is the sender's text)."""

    reason: Reason
    detail: str
    tenant_alias: str


def admit(webhook: Mapping[str, Any], policy: Admission, now_ms: int) -> Dropped | None:
    """None when the webhook is ours to forward; otherwise why it is dropped. `created` must
    already be known to be an integer (the receiver refuses a webhook without one)."""
    tenant = webhook.get("tenantAlias")
    alias = tenant[:64] if isinstance(tenant, str) else ""
    if alias not in policy.tenants or tenant != alias:
        detail = "no tenantAlias" if not alias else "not in WEBHOOK_TENANT_ALIASES"
        return Dropped(Reason.OTHER_TENANT, detail, alias)
    live = webhook.get("live")
    if policy.live != "any" and live is not (policy.live == "live"):
        mode = _MODES[live] if isinstance(live, bool) else "no `live` flag:"
        detail = f"{mode} webhook, WEBHOOK_LIVE={policy.live}"
        return Dropped(Reason.TENANT_MODE_EXCLUDED, detail, alias)
    created = webhook["created"]
    if created < now_ms - policy.max_age_ms:
        detail = f"created {_hours(now_ms - created)} ago, over WEBHOOK_MAX_AGE_HOURS"
        return Dropped(Reason.WEBHOOK_TOO_OLD, detail, alias)
    if created > now_ms + policy.future_skew_ms:
        detail = f"created {_hours(created - now_ms)} ahead of our clock"
        return Dropped(Reason.WEBHOOK_IN_THE_FUTURE, detail, alias)
    return None


def _hours(gap_ms: int) -> str:
    """A gap for the log line, in integer arithmetic: `created` may be any JSON integer."""
    if gap_ms >= 1_000_000 * HOUR_MS:
        return "over a million hours"
    return f"{gap_ms // HOUR_MS}.{gap_ms % HOUR_MS * 10 // HOUR_MS} h"
