"""What every HTTP entry point shares (receivers and push consumers alike): the early answer
(`Refusal` for a 4xx, `RetryLater` for a 503; the status follows from the reason), the JSON
answer, the method check, the bearer credential parser and bounded body reading (decoding gzip
or deflate on the way).

A handler raises an `EarlyAnswer` anywhere in its handling; `common.request_log` turns it into
the answer `{"error": message, "reason": reason}` with its status and headers. Nothing here
knows about Segment or Pub/Sub.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import flask
from gunicorn.http.errors import ParseException
from werkzeug.exceptions import ClientDisconnected

from .deadlines import BodyDeadlines
from .decoding import CorruptBody, EndedEarly, OverLimit, UnsupportedEncoding, decoded_body
from .outcomes import Outcome, Reason

# What reading a body raises when the client's bytes stop making a body: the connection closed
# early (werkzeug, gunicorn's `NoMoreData`, a reset), or chunked framing that does not parse.
_BROKEN_BODY = (ClientDisconnected, ParseException, OSError)
_UNREADABLE = (UnsupportedEncoding, OverLimit, CorruptBody, EndedEarly, *_BROKEN_BODY)


class EarlyAnswer(Exception):
    """A request answered before its handling ended, with `{"error": message, "reason": reason}`
    (never a stack trace). The status follows from the reason (`Reason.status`).

    `reason` is the code from the one vocabulary (`common.outcomes`) that the log line carries
    too. `detail` is for the log line only (what an operator needs, such as which exception a
    client library raised); the caller sees `message`. `unread=True` says the body was not (or
    not wholly) read: the answer then goes out at once and the connection is closed, instead of
    the framework reading (and buffering) whatever the client still sends."""

    outcome: Outcome

    def __init__(
        self,
        reason: Reason,
        message: str,
        headers: Mapping[str, str] | None = None,
        detail: str = "",
        unread: bool = False,
    ) -> None:
        if reason.outcome is not self.outcome:
            raise ValueError(f"{reason} is a reason of {reason.outcome}, not {self.outcome}")
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.headers = dict(headers or {})
        self.detail = detail
        self.unread = unread

    @property
    def status(self) -> int:
        return self.reason.status

    def answer(self, connection: socket.socket | None = None) -> flask.Response:
        """The JSON answer. When the body was not read, the answer is streamed (functions-
        framework drains a body it was not asked to stream) and, once written, `connection`
        (the client's socket) is shut both ways: gunicorn keeps a connection alive whatever the
        answer says, and would then read the unread body, however slowly it drips, before the
        thread is free again. Shut, the next byte the client sends ends the connection."""
        content = {"error": self.message, "reason": self.reason}
        if not self.unread:
            return json_answer(self.status, content, self.headers)
        body = json.dumps(content).encode()
        return flask.Response(
            _ThenShut(body, connection),
            status=self.status,
            headers={**self.headers, "Connection": "close", "Content-Length": str(len(body))},
            mimetype="application/json",
        )


class _ThenShut:
    """A body of one chunk; when the server closes it (after writing it: WSGI's `close`), the
    connection is shut for reading and writing."""

    def __init__(self, body: bytes, connection: socket.socket | None) -> None:
        self._body = body
        self._connection = connection

    def __iter__(self) -> Iterator[bytes]:
        yield self._body

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(OSError):  # the client may be gone already
                self._connection.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def before_the_body() -> Iterator[None]:
    """Whatever early answer is raised inside is marked `unread`: the body has not been read,
    so the answer goes out at once and the connection is closed, whichever check refused."""
    try:
        yield
    except EarlyAnswer as answer:
        answer.unread = True
        raise


class Refusal(EarlyAnswer):
    """A 4xx: the request itself is wrong, and the sender must change it (a `refused` reason)."""

    outcome = Outcome.REFUSED


class RetryLater(EarlyAnswer):
    """A 503: we cannot take the request now, and the sender should send it again (a `retry`
    reason)."""

    outcome = Outcome.RETRY


def json_answer(
    status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> flask.Response:
    return flask.Response(
        json.dumps(body), status=status, headers=dict(headers or {}), mimetype="application/json"
    )


# What may surround a header's value or a token: HTTP's optional white space (and the line ends
# a pasted secret brings). Never `str.strip()`'s Unicode spaces: a token ending in U+00A0 is
# another token.
OWS = " \t\r\n"


def require_method(method: str, allowed: Sequence[str] = ("POST",)) -> None:
    if method not in allowed:
        methods = ", ".join(allowed)
        # The sender's own text is not repeated (it would reach the log line too).
        known = method if method in ("GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS") else ""
        message = f"method {known or '(other)'} is not accepted: use {methods}"
        raise Refusal(Reason.METHOD_NOT_ALLOWED, message, {"Allow": methods})


def bearer_token(header: str | None, challenge: str, required: str, schemes: str = "Bearer") -> str:
    """The token of `Authorization: Bearer <token>`, or a 401 saying what is wrong.

    `challenge` is the `WWW-Authenticate` value sent with the 401; `required` says, in the
    answer to a request without the header, what credential is expected. The token itself is
    never echoed.
    """

    def unauthorized(reason: Reason, message: str) -> Refusal:
        return Refusal(reason, message, {"WWW-Authenticate": challenge})

    if not header:
        raise unauthorized(Reason.MISSING_CREDENTIALS, f"missing Authorization header: {required}")
    scheme, _, token = header.strip(OWS).partition(" ")
    if scheme.lower() != "bearer":
        # Not even the scheme is repeated: a token sent without one would be echoed.
        raise unauthorized(
            Reason.MALFORMED_CREDENTIALS, f"unsupported authorization scheme: use {schemes}"
        )
    token = token.strip(OWS)
    if not token:
        raise unauthorized(Reason.MALFORMED_CREDENTIALS, "empty bearer token")
    return token


def read_body(
    request: flask.Request,
    limit: int,
    expected: str,
    deadlines: BodyDeadlines,
    decode: bool = False,
) -> bytes:
    """At most `limit` bytes, arrived within `deadlines.seconds`; with `decode`, after decoding
    the request's `Content-Encoding` (the limit holds for the compressed and for the decoded
    size). Refused before reading when the declared length is already over."""
    length = request.content_length
    if length is not None and length > limit:
        raise Refusal(
            Reason.BODY_TOO_LARGE, f"body is {length} bytes; the limit is {limit}", unread=True
        )
    encoding = request.headers.get("Content-Encoding") if decode else None
    with deadlines.watching(request.environ.get("gunicorn.socket")) as watch:
        try:
            raw = decoded_body(request.stream, encoding, limit, length)
        except _UNREADABLE as error:
            if watch.expired:  # the deadline ended the read: whatever it raised is moot
                raise RetryLater(
                    Reason.BODY_TIMEOUT,
                    f"the body did not arrive within {deadlines.seconds:g} s: send it again",
                    unread=True,
                ) from None
            raise _read_refusal(error) from None
    if not raw.strip():
        raise Refusal(Reason.INVALID_BODY, f"empty body: send {expected}")
    return raw


def _read_refusal(error: Exception) -> Refusal:
    """The answer to a body that could not be read (one of `_UNREADABLE`)."""
    if isinstance(error, UnsupportedEncoding):
        return Refusal(Reason.UNSUPPORTED_ENCODING, str(error), unread=True)
    if isinstance(error, OverLimit):
        return Refusal(Reason.BODY_TOO_LARGE, str(error), unread=True)
    if isinstance(error, CorruptBody | EndedEarly):
        return Refusal(Reason.MALFORMED_BODY, str(error), unread=True)
    message = "the body ended early or its chunked encoding is malformed"
    return Refusal(Reason.MALFORMED_BODY, message, detail=type(error).__name__, unread=True)
