"""What deliver plans for a run of messages in order, with its memory of accounts kept in a dict:
the previews (`python -m mapper`, `backfill --dry-run`) show the account deliver would use,
without Firestore."""

from __future__ import annotations

from datetime import datetime

from . import map_message
from .options import MappingOptions
from .plan import AccountFrom, Plan


def plan_remembering(
    message: object, options: MappingOptions, now: datetime, memory: dict[str, str] | None
) -> Plan:
    """The plan of `message` given `memory` (user -> account; None: REMEMBER_ACCOUNTS off),
    which the plan then updates as deliver would once SaaSquatch accepts it: a named account is
    remembered, a delete forgets."""
    plan = map_message(message, options, now=now)
    account = plan.account
    if memory is None or account is None:
        return plan
    if account.source is AccountFrom.USER_ID and account.user in memory:
        plan = map_message(message, options, now=now, remembered_account=memory[account.user])
    if plan.message_type == "delete":
        memory.pop(account.user, None)
    elif account.source is AccountFrom.TRAIT:
        memory[account.user] = account.id
    return plan
