"""deliver's memory of accounts: which account each user was last said to be in.

The hosted product takes a message's account from its `account_id` trait and, without one, uses
the user id (a solo account). A B2B program then loses its users to a second account as soon as
a call comes without the trait (a server-side refund): SaaSquatch answers 404 for the user in
the solo account, the missing-user upsert creates them there, and the event lands there. So
deliver remembers, per tenant and user, the account the last message that named one said, and
a later message that names none goes there (docs/mapping.md, "Accounts").

What is kept is ids only: the tenant, the user id, the account id, when the message that named
the account happened (`seenAt`) and `expireAt`, which a Firestore TTL policy uses to delete the
entry 180 days after the last message that named the account. A recall that finds an entry
more than `REFRESH_AFTER` old pushes `expireAt` on (one write a month at most per user), so a
user identified once and tracked for a year is not forgotten. Replays and out-of-order
deliveries must not move a user back to an account they left: an entry is only replaced by a
message that happened no earlier (a Firestore transaction reads, compares and writes).
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from datetime import datetime, timedelta
from typing import Any, Protocol

from google.api_core.retry import Retry

from common.outcomes import Outcome
from mapper import AccountFrom, MappingOptions, Plan, map_message
from mapper.track import TIMESTAMP_FIELDS, parse_timestamp

RETENTION = timedelta(days=180)
REFRESH_AFTER = timedelta(days=30)


class AccountMemoryUnavailable(Exception):
    """Firestore could not be read or written: deliver asks for a retry rather than send a
    message to the wrong account (or leave a user's account unrecorded)."""


class AccountMemory(Protocol):
    """deliver's port to the memory (`FirestoreAccounts` in production). Every method raises
    `AccountMemoryUnavailable` when it cannot answer."""

    def recall(self, tenant: str, user: str, now: datetime) -> str | None: ...

    def remember(
        self, tenant: str, user: str, account: str, seen_at: datetime, now: datetime
    ) -> None: ...

    def forget(self, tenant: str, user: str) -> None: ...


def document_id(tenant: str, user: str) -> str:
    """A Firestore document id for the pair (ids cannot hold `/`, and user ids can)."""
    return hashlib.sha256(f"{tenant}\n{user}".encode()).hexdigest()


class FirestoreAccounts:
    """The memory in a Firestore collection beside the ledger's; the client is made on first use,
    once per process (`FIRESTORE_EMULATOR_HOST` sends it to the emulator)."""

    def __init__(self, project: str, database: str, collection: str, timeout: float) -> None:
        self._project = project
        self._database = database
        self._collection = collection
        self._timeout = timeout
        # Retries end with the timeout too, as the ledger's: a push never waits for minutes.
        self._retry = Retry(initial=0.1, maximum=1.0, timeout=timeout)
        self._client: Any = None
        self._lock = threading.Lock()

    def _document(self, tenant: str, user: str) -> Any:
        with self._lock:
            if self._client is None:
                from google.cloud import firestore

                self._client = firestore.Client(project=self._project, database=self._database)
            return self._client.collection(self._collection).document(document_id(tenant, user))

    def recall(self, tenant: str, user: str, now: datetime) -> str | None:
        """The account remembered for the user, or None; an entry last written more than
        `REFRESH_AFTER` ago has its `expireAt` pushed on (use keeps it)."""
        try:
            found = self._document(tenant, user)
            snapshot = found.get(retry=self._retry, timeout=self._timeout)
        except Exception as error:  # any failure of the client: never a guess
            raise AccountMemoryUnavailable(_why(error)) from None
        if not snapshot.exists:
            return None
        stored = snapshot.to_dict() or {}
        account = stored.get("accountId")
        if not isinstance(account, str) or not account:
            return None
        expire_at = stored.get("expireAt")
        if isinstance(expire_at, datetime) and expire_at < now + RETENTION - REFRESH_AFTER:
            # A failure only leaves the TTL where it was: the next recall tries again.
            with contextlib.suppress(Exception):
                found.update({"expireAt": now + RETENTION}, timeout=self._timeout)
        return account

    def remember(
        self, tenant: str, user: str, account: str, seen_at: datetime, now: datetime
    ) -> None:
        """Record `account` for the user, unless the entry was written by a message that
        happened later than `seen_at` (a replay or a late delivery must not move them back)."""
        from google.cloud import firestore

        document = {
            "tenant": tenant,
            "userId": user,
            "accountId": account,
            "seenAt": seen_at,
            "expireAt": now + RETENTION,
        }

        @firestore.transactional
        def replace_if_older(transaction: Any, target: Any) -> None:
            snapshot = target.get(transaction=transaction, retry=self._retry, timeout=self._timeout)
            if snapshot.exists:
                stored = (snapshot.to_dict() or {}).get("seenAt")
                if isinstance(stored, datetime) and stored > seen_at:
                    return
            transaction.set(target, document)

        try:
            target = self._document(tenant, user)
            replace_if_older(self._client.transaction(), target)
        except Exception as error:
            raise AccountMemoryUnavailable(_why(error)) from None

    def forget(self, tenant: str, user: str) -> None:
        try:
            self._document(tenant, user).delete(retry=self._retry, timeout=self._timeout)
        except Exception as error:
            raise AccountMemoryUnavailable(_why(error)) from None


def _why(error: Exception) -> str:
    """The client's failure in a few words (its class and first line), nothing of our data."""
    first = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


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
    """After a plan was delivered: a message that named its account is remembered (as of the
    time it happened), a delete forgets the user."""
    account = plan.account
    if memory is None or account is None:
        return
    if plan.message_type == "delete":
        memory.forget(tenant, account.user)
    elif account.source is AccountFrom.TRAIT:
        memory.remember(tenant, account.user, account.id, seen_at(message, now), now)


def seen_at(message: Any, now: datetime) -> datetime:
    """When the message happened (its first readable timestamp), never later than now: a
    device clock that is ahead must not pin an account for ever. Without one: now."""
    if isinstance(message, dict):
        for name in TIMESTAMP_FIELDS:
            when = parse_timestamp(message.get(name))
            if when is not None:
                return min(when, now)
    return now
