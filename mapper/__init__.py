"""Pure Segment -> SaaSquatch mapping: one message in, a `Plan` out. No I/O, no environment.

The mapper depends only on pure leaves of ours: the SaaSquatch call shapes (`saasquatch.calls`),
the outcome vocabulary (`common.outcomes`) and text cuts (`common.text`). JSONata expressions
(`transformers.py`) are evaluated here too: a pure computation, bounded per message.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from common.outcomes import Outcome, Reason
from saasquatch.calls import Call, DotSegmentId, Purpose, user_path

from .cookies import referral_cookie
from .identify import upsert_call
from .notes import Notes
from .options import InvalidDataStrategy, MappingOptions, TrackUpsertStrategy
from .plan import Account, AccountFrom, Plan, Undeliverable, dead_letter, ignored
from .segment import IGNORED_TYPES, SegmentMessage, account_for
from .track import map_track
from .transforming import identify_segments

__all__ = [
    "Account",
    "AccountFrom",
    "InvalidDataStrategy",
    "MappingOptions",
    "Plan",
    "TrackUpsertStrategy",
    "map_message",
    "plan_message",
]

DEFAULT_OPTIONS = MappingOptions()


def map_message(
    message: Any,
    options: MappingOptions = DEFAULT_OPTIONS,
    *,
    now: datetime,
    remembered_account: str | None = None,
) -> Plan:
    """Decide what one Segment message becomes. Never raises: every input ends in a Plan.

    `now` (timezone-aware) is passed in so the timestamp window is testable and the mapper stays
    pure; so is `remembered_account`, the account deliver's memory holds for the message's user,
    used only when the message names none (`Plan.account` says which rule chose). A failure
    nobody foresaw (a bug, a pathological value) becomes a `mapping_error` dead letter rather
    than a lost message; `plan_message` is the same without that net.
    """
    try:
        return plan_message(message, options, now=now, remembered_account=remembered_account)
    except Exception as error:
        kind = message.get("type") if isinstance(message, dict) else None
        return dead_letter(
            Reason.MAPPING_ERROR,
            type(error).__name__,
            message_type=kind if isinstance(kind, str) else None,
        )


def plan_message(
    message: Any,
    options: MappingOptions = DEFAULT_OPTIONS,
    *,
    now: datetime,
    remembered_account: str | None = None,
) -> Plan:
    """`map_message` without its outer catch: raises only on a bug, which tests look for."""
    if not isinstance(message, dict):
        return dead_letter(Reason.MALFORMED_MESSAGE, "a Segment message must be a JSON object")
    try:
        parsed = SegmentMessage.model_validate(message)
    except ValidationError as error:
        return dead_letter(Reason.INVALID_MESSAGE, _describe(error))
    kind = parsed.type
    try:
        return _map(parsed, message, kind, options, now, remembered_account)
    except Undeliverable as error:
        return dead_letter(error.reason, error.detail, message_type=kind)
    except DotSegmentId as error:
        return dead_letter(Reason.DOT_SEGMENT_ID, str(error), message_type=kind)


def _map(
    parsed: SegmentMessage,
    raw: dict[str, Any],
    kind: str | None,
    options: MappingOptions,
    now: datetime,
    remembered: str | None,
) -> Plan:
    if kind in IGNORED_TYPES:
        return ignored(Reason.UNSUPPORTED_TYPE, kind)
    if kind is None or kind not in ROUTES:
        # The type is the sender's text: said by its shape (the dead letter holds the message).
        shown = "no type" if kind is None else f"a type of {len(kind)} characters"
        return dead_letter(Reason.UNKNOWN_TYPE, f"{shown}, not a Segment message type")
    if parsed.excludes_saasquatch():
        return ignored(Reason.EXCLUDED_BY_INTEGRATIONS, kind)
    user = parsed.user_id
    if user is None:
        return ignored(Reason.ANONYMOUS, kind)
    return ROUTES[kind](parsed, raw, user, options, now, remembered)


def _identify(
    parsed: SegmentMessage,
    raw: dict[str, Any],
    user: str,
    options: MappingOptions,
    _: datetime,
    remembered: str | None = None,
) -> Plan:
    if options.ignore_identify:
        return ignored(Reason.IDENTIFY_DISABLED, "identify")
    notes = Notes()
    segments = identify_segments(raw, options, notes)
    transformed = {"segments": segments} if segments else None
    account = account_for(parsed.traits, user, remembered)
    cookies = referral_cookie(raw, notes)
    call = upsert_call(parsed, user, account, parsed.traits, notes, transformed, cookies)
    return Plan(
        Outcome.DELIVERED,
        message_type="identify",
        calls=(call,),
        notes=notes.lines(),
        note_counts=notes.summary(),
        account=account,
    )


def _delete(
    parsed: SegmentMessage,
    _raw: dict[str, Any],
    user: str,
    options: MappingOptions,
    _: datetime,
    remembered: str | None = None,
) -> Plan:
    if not options.honor_delete:
        return ignored(Reason.DELETE_DISABLED, "delete")
    account = account_for(parsed.traits or parsed.context.traits, user, remembered)
    do_not_track = "true" if options.delete_do_not_track else "false"
    path = user_path(account.id, user)
    call = Call(Purpose.DELETE_USER, "DELETE", path, params={"doNotTrack": do_not_track})
    return Plan(Outcome.DELIVERED, message_type="delete", calls=(call,), account=account)


# The message types that become SaaSquatch calls, and what maps each (after the checks above);
# the last argument is the remembered account (None: none, or not asked).
Route = Callable[[SegmentMessage, dict[str, Any], str, MappingOptions, datetime, str | None], Plan]
ROUTES: dict[str, Route]
ROUTES = {"track": map_track, "identify": _identify, "delete": _delete}


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "message"
    return f"{where}: {first['msg']} ({error.error_count()} problem(s))"
