"""What both HTTP entry points share: one refusal type, the JSON answer, the method check, the
bearer credential parser and bounded body reading (decoding gzip or deflate on the way).

A side raises `Refusal` anywhere in its handling; `common.request_log` turns it into the answer
`{"error": message}` with its status and headers. Nothing here knows about Segment or Pub/Sub.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import IO, Any

import flask

from .decoding import CorruptBody, OverLimit, UnsupportedEncoding, decoded_body


class Refusal(Exception):
    """A request answered with an error status and `{"error": message}` (never a stack trace).

    `detail` is for the log line only (what an operator needs, such as which exception a
    client library raised); the caller sees `message`. `unread=True` says the body was not (or
    not wholly) read: the answer then goes out at once and the connection is closed, instead of
    the framework reading (and buffering) whatever the client still sends."""

    def __init__(
        self,
        status: int,
        message: str,
        headers: Mapping[str, str] | None = None,
        detail: str = "",
        unread: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})
        self.detail = detail
        self.unread = unread

    def answer(self) -> flask.Response:
        if not self.unread:
            return json_answer(self.status, {"error": self.message}, self.headers)
        # functions-framework drains the request body after the function unless the response is
        # streamed; gunicorn closes the connection after a `Connection: close` answer.
        body = json.dumps({"error": self.message}).encode()
        return flask.Response(
            iter([body]),
            status=self.status,
            headers={**self.headers, "Connection": "close", "Content-Length": str(len(body))},
            mimetype="application/json",
        )


def json_answer(
    status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> flask.Response:
    return flask.Response(
        json.dumps(body), status=status, headers=dict(headers or {}), mimetype="application/json"
    )


def require_method(method: str, allowed: Sequence[str] = ("POST",)) -> None:
    if method not in allowed:
        methods = ", ".join(allowed)
        message = f"method {method[:16]!r} is not accepted: use {methods}"
        raise Refusal(405, message, {"Allow": methods}, unread=True)


def bearer_token(header: str | None, challenge: str, required: str, schemes: str = "Bearer") -> str:
    """The token of `Authorization: Bearer <token>`, or a 401 saying what is wrong.

    `challenge` is the `WWW-Authenticate` value sent with the 401; `required` says, in the
    answer to a request without the header, what credential is expected. The token itself is
    never echoed.
    """

    def unauthorized(message: str) -> Refusal:
        return Refusal(401, message, {"WWW-Authenticate": challenge}, unread=True)

    if not header:
        raise unauthorized(f"missing Authorization header: {required}")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        # Not even the scheme is repeated: a token sent without one would be echoed.
        raise unauthorized(f"unsupported authorization scheme: use {schemes}")
    token = token.strip()
    if not token:
        raise unauthorized("empty bearer token")
    return token


def read_body(
    stream: IO[bytes],
    content_length: int | None,
    limit: int,
    expected: str,
    encoding: str | None = None,
) -> bytes:
    """At most `limit` bytes, after decoding `encoding` (a `Content-Encoding`; the limit holds
    for the compressed and for the decoded size); refused before reading when the declared
    length is already over."""
    if content_length is not None and content_length > limit:
        raise Refusal(413, f"body is {content_length} bytes; the limit is {limit}", unread=True)
    try:
        raw = decoded_body(stream, encoding, limit)
    except UnsupportedEncoding as error:
        raise Refusal(415, str(error), unread=True) from None
    except CorruptBody as error:
        raise Refusal(400, str(error), unread=True) from None
    except OverLimit as error:
        raise Refusal(413, str(error), unread=True) from None
    if not raw.strip():
        raise Refusal(400, f"empty body: send {expected}")
    return raw
