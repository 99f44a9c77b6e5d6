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
message that happened no earlier (`mapper.accounts.replaces`, the preview's rule too), by an
optimistic write (read; create if absent, else update only if the entry is still the one read;
a lost race reads again). Not a transaction: its commit retries without a bound, and every
call here ends within the ledger's timeout. A Segment delete forgets the user, delivered or
ignored by design (`mapper.accounts.deleted_user`).
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from datetime import datetime, timedelta
from typing import Any

from google.api_core import exceptions
from google.api_core.retry import Retry

from mapper.accounts import replaces

RETENTION = timedelta(days=180)
REFRESH_AFTER = timedelta(days=30)
# A remember that loses the race to another deliver this many times in a row gives up (a retry).
RACE_ATTEMPTS = 5


class AccountMemoryUnavailable(Exception):
    """Firestore could not be read or written: deliver asks for a retry rather than send a
    message to the wrong account (or leave a user's account unrecorded)."""


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
        self._client: Any = None
        self._lock = threading.Lock()

    def _document(self, tenant: str, user: str) -> Any:
        with self._lock:
            if self._client is None:
                from google.cloud import firestore

                self._client = firestore.Client(project=self._project, database=self._database)
            return self._client.collection(self._collection).document(document_id(tenant, user))

    def _bounded(self, deadline: float) -> dict[str, Any]:
        """The `retry` and `timeout` of one call, so that every call of one recall, remember or
        forget (retries included) ends by `deadline`: a push never waits for minutes."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise exceptions.DeadlineExceeded(f"no answer within {self._timeout:g} s")
        return {"retry": Retry(initial=0.1, maximum=1.0, timeout=left), "timeout": left}

    def recall(self, tenant: str, user: str, now: datetime) -> str | None:
        """The account remembered for the user, or None; an entry last written more than
        `REFRESH_AFTER` ago has its `expireAt` pushed on (use keeps it)."""
        deadline = time.monotonic() + self._timeout
        try:
            found = self._document(tenant, user)
            snapshot = found.get(**self._bounded(deadline))
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
                found.update({"expireAt": now + RETENTION}, **self._bounded(deadline))
        return account

    def remember(
        self, tenant: str, user: str, account: str, seen_at: datetime, now: datetime
    ) -> None:
        """Record `account` for the user, unless the entry was written by a message that
        happened later than `seen_at` (a replay or a late delivery must not move them back).
        Another deliver writing between the read and the write makes the write fail; it is
        read again (at most `RACE_ATTEMPTS` times, all within the timeout)."""
        document = {
            "tenant": tenant,
            "userId": user,
            "accountId": account,
            "seenAt": seen_at,
            "expireAt": now + RETENTION,
        }
        deadline = time.monotonic() + self._timeout
        try:
            target = self._document(tenant, user)
            for _ in range(RACE_ATTEMPTS):
                if self._replace_if_older(target, document, deadline):
                    return
        except Exception as error:
            raise AccountMemoryUnavailable(_why(error)) from None
        raise AccountMemoryUnavailable(f"lost the race to another write {RACE_ATTEMPTS} times")

    def _replace_if_older(self, target: Any, document: dict[str, Any], deadline: float) -> bool:
        """One read and at most one write; False when another write came between them."""
        snapshot = target.get(**self._bounded(deadline))
        try:
            if not snapshot.exists:
                target.create(document, **self._bounded(deadline))
                return True
            stored = (snapshot.to_dict() or {}).get("seenAt")
            if not replaces(stored if isinstance(stored, datetime) else None, document["seenAt"]):
                return True  # a newer message wrote it: keep it
            unchanged = self._client.write_option(last_update_time=snapshot.update_time)
            target.update(document, option=unchanged, **self._bounded(deadline))
            return True
        except (exceptions.Conflict, exceptions.FailedPrecondition, exceptions.NotFound):
            return False  # created, changed or deleted since the read

    def forget(self, tenant: str, user: str) -> None:
        deadline = time.monotonic() + self._timeout
        try:
            self._document(tenant, user).delete(**self._bounded(deadline))
        except Exception as error:
            raise AccountMemoryUnavailable(_why(error)) from None


def _why(error: Exception) -> str:
    """The client's failure in a few words (its class and first line), nothing of our data."""
    first = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__
