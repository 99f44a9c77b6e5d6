"""One vocabulary for how a request or a message ended, and why.

Every log line, push answer, plan and dead letter uses these values; operators type them into
`python -m tools dead-letters replay --reason`, and `docs/operations/reasons.md` documents them
(a test keeps that table and this module in step). `Reason.status` is the one table of the HTTP
status an answer ending with a reason has.
"""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    ACCEPTED = "accepted"  # ingest: every message of the request is in Pub/Sub
    DELIVERED = "delivered"  # deliver: SaaSquatch has it (or, in a plan: would have it)
    IGNORED = "ignored"  # by design; acknowledged without a call
    RETRY = "retry"  # transient failure; the sender (Segment or Pub/Sub) tries again
    DEAD_LETTERED = "dead_lettered"  # permanent failure; on the dead-letter topic with its reason
    REFUSED = "refused"  # the request itself was refused (a 4xx): the sender must change it


class Reason(StrEnum):
    """Why a message or a request ended as it did. Each reason belongs to exactly one outcome
    (`.outcome`)."""

    # delivered, with a note
    USER_CREATED = "user_created"
    ALREADY_DELIVERED = "already_delivered"
    ALREADY_IN_LEDGER = "already_in_ledger"
    ALREADY_DELETED = "already_deleted"
    COOKIE_REFUSED = "cookie_refused"
    # ignored
    ANONYMOUS = "anonymous"
    UNSUPPORTED_TYPE = "unsupported_type"
    EXCLUDED_BY_INTEGRATIONS = "excluded_by_integrations"
    IDENTIFY_DISABLED = "identify_disabled"
    DELETE_DISABLED = "delete_disabled"
    TEST_WEBHOOK = "test_webhook"
    WEBHOOK_NOT_FORWARDED = "webhook_not_forwarded"
    OTHER_TENANT = "other_tenant"
    TENANT_MODE_EXCLUDED = "tenant_mode_excluded"
    WEBHOOK_TOO_OLD = "webhook_too_old"
    WEBHOOK_IN_THE_FUTURE = "webhook_in_the_future"
    # retry
    SAASQUATCH_UNAVAILABLE = "saasquatch_unavailable"
    SAASQUATCH_RATE_LIMITED = "saasquatch_rate_limited"
    SAASQUATCH_TIMEOUT = "saasquatch_timeout"
    SAASQUATCH_UNREACHABLE = "saasquatch_unreachable"
    API_KEY_UNAVAILABLE = "api_key_unavailable"
    USER_NOT_FOUND_AFTER_UPSERT = "user_not_found_after_upsert"
    DEAD_LETTER_PUBLISH_FAILED = "dead_letter_publish_failed"
    LEDGER_UNAVAILABLE = "ledger_unavailable"
    ACCOUNT_MEMORY_UNAVAILABLE = "account_memory_unavailable"
    PUBLISH_FAILED = "publish_failed"
    TOKEN_STORE_UNAVAILABLE = "token_store_unavailable"
    PUSH_CERTS_UNAVAILABLE = "push_certs_unavailable"
    SIGNING_KEYS_UNAVAILABLE = "signing_keys_unavailable"
    SEGMENT_UNAVAILABLE = "segment_unavailable"
    SEGMENT_RATE_LIMITED = "segment_rate_limited"
    SEGMENT_UNREACHABLE = "segment_unreachable"
    WRITE_KEY_UNAVAILABLE = "write_key_unavailable"
    BODY_TIMEOUT = "body_timeout"
    INTERNAL_ERROR = "internal_error"
    # dead-lettered
    MALFORMED_MESSAGE = "malformed_message"
    INVALID_MESSAGE = "invalid_message"
    UNKNOWN_TYPE = "unknown_type"
    MISSING_EVENT_NAME = "missing_event_name"
    INVALID_EVENT_KEY = "invalid_event_key"
    INVALID_EVENT_DATA = "invalid_event_data"
    DOT_SEGMENT_ID = "dot_segment_id"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    TIMESTAMP_OUT_OF_WINDOW = "timestamp_out_of_window"
    MAPPING_ERROR = "mapping_error"
    TRANSFORMER_FAILED = "transformer_failed"
    TRANSFORMER_INVALID_RESULT = "transformer_invalid_result"
    INVALID_WEBHOOK = "invalid_webhook"
    SEGMENT_MESSAGE_TOO_LARGE = "segment_message_too_large"
    UNSENDABLE_BODY = "unsendable_body"
    SAASQUATCH_UNAUTHORIZED = "saasquatch_unauthorized"
    SAASQUATCH_REJECTED = "saasquatch_rejected"
    SAASQUATCH_NOT_FOUND = "saasquatch_not_found"
    USER_NOT_FOUND = "user_not_found"
    SAASQUATCH_UNEXPECTED_ANSWER = "saasquatch_unexpected_answer"
    SEGMENT_UNAUTHORIZED = "segment_unauthorized"
    SEGMENT_REJECTED = "segment_rejected"
    DELIVERY_ATTEMPTS_EXHAUSTED = "delivery_attempts_exhausted"  # moved by Pub/Sub's own policy
    UNKNOWN = "unknown"  # on the dead-letter topic without a reason we can read
    # refused (the request, not a message: answered 4xx)
    METHOD_NOT_ALLOWED = "method_not_allowed"
    MISSING_CREDENTIALS = "missing_credentials"
    MALFORMED_CREDENTIALS = "malformed_credentials"
    WRONG_TOKEN = "wrong_token"
    WRONG_SERVICE_ACCOUNT = "wrong_service_account"
    BAD_SIGNATURE = "bad_signature"
    BODY_TOO_LARGE = "body_too_large"
    UNSUPPORTED_ENCODING = "unsupported_encoding"
    MALFORMED_BODY = "malformed_body"
    INVALID_BODY = "invalid_body"

    @property
    def outcome(self) -> Outcome:
        return _OUTCOME_OF[self]

    @property
    def status(self) -> int:
        """The HTTP status of an answer that ends with this reason (see `_STATUS`)."""
        return _STATUS.get(self) or _OUTCOME_STATUS[self.outcome]


_GROUPS: dict[Outcome, tuple[Reason, ...]] = {
    Outcome.DELIVERED: (
        Reason.USER_CREATED,
        Reason.ALREADY_DELIVERED,
        Reason.ALREADY_IN_LEDGER,
        Reason.ALREADY_DELETED,
        Reason.COOKIE_REFUSED,
    ),
    Outcome.IGNORED: (
        Reason.ANONYMOUS,
        Reason.UNSUPPORTED_TYPE,
        Reason.EXCLUDED_BY_INTEGRATIONS,
        Reason.IDENTIFY_DISABLED,
        Reason.DELETE_DISABLED,
        Reason.TEST_WEBHOOK,
        Reason.WEBHOOK_NOT_FORWARDED,
        Reason.OTHER_TENANT,
        Reason.TENANT_MODE_EXCLUDED,
        Reason.WEBHOOK_TOO_OLD,
        Reason.WEBHOOK_IN_THE_FUTURE,
    ),
    Outcome.RETRY: (
        Reason.SAASQUATCH_UNAVAILABLE,
        Reason.SAASQUATCH_RATE_LIMITED,
        Reason.SAASQUATCH_TIMEOUT,
        Reason.SAASQUATCH_UNREACHABLE,
        Reason.API_KEY_UNAVAILABLE,
        Reason.USER_NOT_FOUND_AFTER_UPSERT,
        Reason.DEAD_LETTER_PUBLISH_FAILED,
        Reason.LEDGER_UNAVAILABLE,
        Reason.ACCOUNT_MEMORY_UNAVAILABLE,
        Reason.PUBLISH_FAILED,
        Reason.TOKEN_STORE_UNAVAILABLE,
        Reason.PUSH_CERTS_UNAVAILABLE,
        Reason.SIGNING_KEYS_UNAVAILABLE,
        Reason.SEGMENT_UNAVAILABLE,
        Reason.SEGMENT_RATE_LIMITED,
        Reason.SEGMENT_UNREACHABLE,
        Reason.WRITE_KEY_UNAVAILABLE,
        Reason.BODY_TIMEOUT,
        Reason.INTERNAL_ERROR,
    ),
    Outcome.DEAD_LETTERED: (
        Reason.MALFORMED_MESSAGE,
        Reason.INVALID_MESSAGE,
        Reason.UNKNOWN_TYPE,
        Reason.MISSING_EVENT_NAME,
        Reason.INVALID_EVENT_KEY,
        Reason.INVALID_EVENT_DATA,
        Reason.DOT_SEGMENT_ID,
        Reason.IDEMPOTENCY_KEY_REUSED,
        Reason.TIMESTAMP_OUT_OF_WINDOW,
        Reason.MAPPING_ERROR,
        Reason.TRANSFORMER_FAILED,
        Reason.TRANSFORMER_INVALID_RESULT,
        Reason.INVALID_WEBHOOK,
        Reason.SEGMENT_MESSAGE_TOO_LARGE,
        Reason.UNSENDABLE_BODY,
        Reason.SAASQUATCH_UNAUTHORIZED,
        Reason.SAASQUATCH_REJECTED,
        Reason.SAASQUATCH_NOT_FOUND,
        Reason.USER_NOT_FOUND,
        Reason.SAASQUATCH_UNEXPECTED_ANSWER,
        Reason.SEGMENT_UNAUTHORIZED,
        Reason.SEGMENT_REJECTED,
        Reason.DELIVERY_ATTEMPTS_EXHAUSTED,
        Reason.UNKNOWN,
    ),
    Outcome.REFUSED: (
        Reason.METHOD_NOT_ALLOWED,
        Reason.MISSING_CREDENTIALS,
        Reason.MALFORMED_CREDENTIALS,
        Reason.WRONG_TOKEN,
        Reason.WRONG_SERVICE_ACCOUNT,
        Reason.BAD_SIGNATURE,
        Reason.BODY_TOO_LARGE,
        Reason.UNSUPPORTED_ENCODING,
        Reason.MALFORMED_BODY,
        Reason.INVALID_BODY,
    ),
}

_OUTCOME_OF: dict[Reason, Outcome] = {
    reason: outcome for outcome, reasons in _GROUPS.items() for reason in reasons
}


def reasons_for(outcome: Outcome) -> tuple[Reason, ...]:
    """The reasons that end in `outcome`, in the order they are documented."""
    return _GROUPS.get(outcome, ())


# The status of an answer follows from its reason: this table, then the outcome's status. Every
# answer a receiver or a consumer gives (a refusal, a push answer) takes its status from here.
_STATUS: dict[Reason, int] = {
    Reason.METHOD_NOT_ALLOWED: 405,
    Reason.MISSING_CREDENTIALS: 401,
    Reason.MALFORMED_CREDENTIALS: 401,
    Reason.WRONG_TOKEN: 401,
    Reason.BAD_SIGNATURE: 401,
    Reason.WRONG_SERVICE_ACCOUNT: 403,
    Reason.BODY_TOO_LARGE: 413,
    Reason.UNSUPPORTED_ENCODING: 415,
    Reason.MALFORMED_BODY: 400,
    Reason.INVALID_BODY: 400,
    # The destination asked to slow down: Pub/Sub is told the same, with its Retry-After.
    Reason.SAASQUATCH_RATE_LIMITED: 429,
    Reason.SEGMENT_RATE_LIMITED: 429,
    Reason.INTERNAL_ERROR: 500,
}
# Pub/Sub acknowledges any 2xx and redelivers anything else; Segment and SaaSquatch retry a 5xx.
_OUTCOME_STATUS: dict[Outcome, int] = {
    Outcome.ACCEPTED: 200,
    Outcome.DELIVERED: 200,
    Outcome.IGNORED: 200,
    Outcome.DEAD_LETTERED: 200,
    Outcome.RETRY: 503,
    Outcome.REFUSED: 400,
}
