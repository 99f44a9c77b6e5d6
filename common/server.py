"""The limits functions-framework's server (gunicorn) is started without, set where it is built.

functions-framework gives gunicorn no way to be configured (`limit_request_line` is fixed at 0,
unlimited; no environment variable is read), and Cloud Run runs its stock command. So when a
target is built (`main.py`, as the framework loads it, before the server starts), `harden` adds
to its gunicorn, in this process only:

- **a bounded request line and headers**: 8,190 bytes for the request line (gunicorn's largest),
  100 header fields of at most 8,190 bytes each; gunicorn answers past that itself (400/431),
  before any of our code runs. Unlimited, a 16 MB request line without credentials cost 21 s
  of CPU and kept 390 MB;
- **`Connection: close` honoured**: gunicorn drops an application's `Connection` header and
  keeps the connection alive, then reads whatever is left of an unread body before the next
  request, however slowly a client drips it. An answer that says `Connection: close` (every
  early answer to an unread body, `common.http.EarlyAnswer`) now closes the connection;
- **no `100 Continue` before the credentials are checked**: gunicorn would send it as soon as
  the headers are parsed, inviting a body before anything was checked. A client that asked for
  it sends its body after a short wait instead (curl: 1 s); Segment's senders do not ask.

Each is checked against gunicorn's own names (gunicorn is pinned in requirements.txt) and
tested over real sockets (tests/receiving/).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

MAX_REQUEST_LINE = 8190  # gunicorn's largest; a longer one is answered 414 by gunicorn
MAX_HEADER_FIELDS = 100
MAX_HEADER_FIELD_BYTES = 8190
LIMITS = {
    "limit_request_line": MAX_REQUEST_LINE,
    "limit_request_fields": MAX_HEADER_FIELDS,
    "limit_request_field_size": MAX_HEADER_FIELD_BYTES,
}

_hardened = False


def harden() -> None:
    """Apply the three changes above to gunicorn as functions-framework will start it (once)."""
    global _hardened
    if _hardened:
        return
    from functions_framework._http import gunicorn as framework_gunicorn
    from gunicorn.http import message, wsgi

    application = framework_gunicorn.GunicornApplication
    load_config = application.load_config

    def bounded_config(self: Any) -> None:
        load_config(self)
        for name, value in LIMITS.items():
            self.cfg.set(name, value)

    setattr(application, "load_config", bounded_config)  # noqa: B010 (a method, replaced)

    process_headers: Callable[[Any, Any], None] = wsgi.Response.process_headers

    def closing_headers(self: Any, headers: Any) -> None:
        if any(
            name.lower() == "connection" and value.strip().lower() == "close"
            for name, value in headers
        ):
            self.force_close()
        process_headers(self, headers)

    setattr(wsgi.Response, "process_headers", closing_headers)  # noqa: B010
    message.Request._policy_expect_continue = False
    _hardened = True
