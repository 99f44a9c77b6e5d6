"""The memory of accounts, as rules over a port: which account a message without one goes to
(`map_remembering`) and what a settled message teaches the memory (`settle_memory`). deliver runs
them on Firestore (`subscription.accounts.FirestoreAccounts`); the previews (`python -m mapper`,
`backfill --dry-run`) on `AccountsInMemory`, so both show the same accounts by one code path."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

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


class AccountMemory(Protocol):
    """The port to the memory (Firestore in deliver, `AccountsInMemory` in the previews). Its
    `remember` keeps the newest entry by `replaces`. deliver's raises
    `subscription.accounts.AccountMemoryUnavailable` when it cannot answer."""

    def recall(self, tenant: str, user: str, now: datetime) -> str | None: ...

    def remember(
        self, tenant: str, user: str, account: str, seen_at: datetime, now: datetime
    ) -> None: ...

    def forget(self, tenant: str, user: str) -> None: ...


def map_remembering(
    message: Any,
    options: MappingOptions,
    now: datetime,
    memory: AccountMemory | None,
    tenant: str,
) -> Plan:
    """`map_message`, and when the plan would fall back on the user id for the account, once
    more with the account the memory holds for the user (if any). Without a memory (switched
    off) it is `map_message`: the hosted rule."""
    plan = map_message(message, options, now=now)
    account = plan.account
    if memory is None or plan.outcome is not Outcome.DELIVERED or account is None:
        return plan
    if account.source is not AccountFrom.USER_ID:
        return plan
    remembered = memory.recall(tenant, account.user, now)
    if remembered is None:
        return plan
    return map_message(message, options, now=now, remembered_account=remembered)


def settle_memory(
    plan: Plan,
    message: Any,
    memory: AccountMemory | None,
    tenant: str,
    now: datetime,
) -> None:
    """After a plan was delivered or ignored: a delete forgets the user (delivered, or ignored
    by design: the memory is our own record of them), a delivered message that named its
    account is remembered (as of the time it happened)."""
    if memory is None:
        return
    forgotten = deleted_user(message, plan)
    if forgotten is not None:
        memory.forget(tenant, forgotten)
        return
    account = plan.account
    named = account is not None and account.source is AccountFrom.TRAIT
    if plan.outcome is Outcome.DELIVERED and account is not None and named:
        memory.remember(tenant, account.user, account.id, seen_at(message, now), now)


@dataclass
class AccountsInMemory:
    """An `AccountMemory` in a dict, with the same rule as deliver's. An entry given without a
    time (`given`, the preview's `--remembered-account`) is older than any message."""

    entries: dict[tuple[str, str], tuple[str, datetime | None]] = field(default_factory=dict)

    def given(self, user: str, account: str, tenant: str = "") -> None:
        self.entries[(tenant, user)] = (account, None)

    def recall(self, tenant: str, user: str, now: datetime) -> str | None:
        found = self.entries.get((tenant, user))
        return found[0] if found else None

    def remember(
        self, tenant: str, user: str, account: str, seen_at: datetime, now: datetime
    ) -> None:
        stored = self.entries.get((tenant, user))
        if stored is None or replaces(stored[1], seen_at):
            self.entries[(tenant, user)] = (account, seen_at)

    def forget(self, tenant: str, user: str) -> None:
        self.entries.pop((tenant, user), None)


def plan_remembering(
    message: object, options: MappingOptions, now: datetime, memory: AccountMemory | None
) -> Plan:
    """What deliver plans for `message` with `memory`, which the plan then updates as deliver
    would once SaaSquatch accepts it (the previews take every plan as accepted)."""
    plan = map_remembering(message, options, now, memory, "")
    settle_memory(plan, message, memory, "", now)
    return plan
