"""The rules of deliver's memory of accounts, pure, and what deliver plans for a run of messages
in order with that memory kept in a dict: the previews (`python -m mapper`,
`backfill --dry-run`) show the account deliver would use, without Firestore. deliver
(`subscription.accounts`) applies the same `seen_at`, `replaces` and `deleted_user`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from common.outcomes import Outcome

from . import map_message
from .options import MappingOptions
from .plan import AccountFrom, Plan
from .segment import SegmentMessage
from .track import TIMESTAMP_FIELDS, parse_timestamp


def seen_at(message: Any, now: datetime) -> datetime:
    """When the message happened (its first readable timestamp), never later than now: a
    device clock that is ahead must not pin an account for ever. Without one: now."""
    if isinstance(message, dict):
        for name in TIMESTAMP_FIELDS:
            when = parse_timestamp(message.get(name))
            if when is not None:
                return min(when, now)
    return now


def replaces(stored: datetime | None, seen: datetime) -> bool:
    """Whether a message that happened at `seen` replaces an entry written by one that happened
    at `stored` (None: no time known): the newest wins, so a replay or a late delivery of an
    older message never moves a user back."""
    return stored is None or stored <= seen


def deleted_user(message: Any, plan: Plan) -> str | None:
    """The user a Segment delete is about, once it is settled (delivered, or ignored by design:
    HONOR_DELETE off, the integrations switch): the memory forgets them either way, as it is
    our own record of them. None for anything else (a dead-lettered delete keeps the account
    its replay needs)."""
    if plan.message_type != "delete" or plan.outcome is Outcome.DEAD_LETTERED:
        return None
    if plan.account is not None:
        return plan.account.user
    if not isinstance(message, dict):
        return None
    try:
        return SegmentMessage.model_validate(message).user_id
    except ValidationError:
        return None


@dataclass(frozen=True)
class Remembered:
    """An entry of the preview's memory: the account, and when the message that named it
    happened (None: given on the command line, older than any message)."""

    account: str
    seen_at: datetime | None = None


def plan_remembering(
    message: object, options: MappingOptions, now: datetime, memory: dict[str, Any] | None
) -> Plan:
    """The plan of `message` given `memory` (user -> `Remembered`; None: REMEMBER_ACCOUNTS
    off), which the plan then updates as deliver would once SaaSquatch accepts it: a named
    account is remembered unless a newer message named another, a delete forgets."""
    plan = map_message(message, options, now=now)
    if memory is None:
        return plan
    account = plan.account
    if account is not None and account.source is AccountFrom.USER_ID and account.user in memory:
        remembered = memory[account.user].account
        plan = map_message(message, options, now=now, remembered_account=remembered)
        account = plan.account
    forgotten = deleted_user(message, plan)
    if forgotten is not None:
        memory.pop(forgotten, None)
    elif account is not None and account.source is AccountFrom.TRAIT:
        seen = seen_at(message, now)
        stored = memory.get(account.user)
        if stored is None or replaces(stored.seen_at, seen):
            memory[account.user] = Remembered(account.id, seen)
    return plan
