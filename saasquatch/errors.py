"""The ways a SaaSquatch call can fail, modelled on the SaaSquatch Java SDK.

`ApiError` is an answer SaaSquatch itself gave (a JSON error body); `UnexpectedAnswer` is one it
did not (an HTML page from a proxy, a redirect); `NoAnswer` means the request never got one.
What each means for a message (retry or dead letter) is the one table's call,
`pushes.verdicts`; these only describe the answer.
"""

from __future__ import annotations

from enum import StrEnum


class SaaSquatchError(Exception):
    """Base: `status` (None without an answer) and the server's `Retry-After` in seconds."""

    status: int | None = None
    retry_after: float | None = None


class ApiError(SaaSquatchError):
    """SaaSquatch's own error body: `{"message", "statusCode", "apiErrorCode"?, "rsCode"?}`."""

    def __init__(
        self,
        message: str,
        status_code: int,
        api_error_code: str | None = None,
        rs_code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        # Said without SaaSquatch's own text, which may quote what it was sent (names, values):
        # that is `message`, for the dead letter, never for a log line.
        codes = ", ".join(code for code in (api_error_code, rs_code) if code)
        super().__init__(f"SaaSquatch answered {status_code}" + (f" ({codes})" if codes else ""))
        self.message = message
        self.status_code = status_code
        self.status = status_code
        self.api_error_code = api_error_code
        self.rs_code = rs_code
        self.retry_after = retry_after


class UnexpectedAnswer(SaaSquatchError):
    """An answer that is neither success nor a SaaSquatch error body."""

    def __init__(self, status: int, content_type: str, retry_after: float | None = None) -> None:
        kind = content_type.split(";", 1)[0].strip() or "no content type"
        super().__init__(f"unexpected answer {status} ({kind})")
        self.status = status
        self.content_type = content_type
        self.retry_after = retry_after


class NoAnswerKind(StrEnum):
    TIMEOUT = "timeout"  # no answer within the timeout
    UNREACHABLE = "unreachable"  # connection refused or reset, DNS, TLS
    KEY_UNAVAILABLE = "key_unavailable"  # the API key could not be read, so nothing was sent


class NoAnswer(SaaSquatchError):
    """No answer at all: always transient. `kind` says why."""

    def __init__(self, kind: NoAnswerKind, cause: str) -> None:
        super().__init__(cause)
        self.kind = kind


class UnsendableBody(ValueError):
    """The call's body cannot be written as JSON (NaN, a lone surrogate): never sendable."""
