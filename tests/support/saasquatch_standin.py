"""A local SaaSquatch: speaks the REST API's wire format, records every request, can fail on cue.

It behaves like the real tenant where our code depends on it: Basic auth with the API key as the
password, user upserts that must repeat `id`/`accountId`, events for a user that does not exist
are 404, a repeated `idempotencyKey` is 409, an upsert whose `cookies` is not Base64URL JSON of
the referral cookie's schema is 400 RS052 (and writes nothing), errors are `{"message",
"statusCode", "apiErrorCode", "rsCode"}`. Faults are queued with `fail(...)`.
"""

from __future__ import annotations

import base64
import json
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tools.local_http import LocalServer, QuietHandler, answer, answer_json

from .local_http import StandIn
from .saasquatch_rules import referral_cookie_problem

TENANT = "test_abc123"
API_KEY = "TEST_sq_5e1f0c7a9b"


def front_end_path(raw: str) -> str:
    """The path a real front end routes: unreserved characters decoded (`%2E` is `.`, RFC 3986
    section 6.2.2.2), then dot segments removed (section 5.2.4), as many proxies, load balancers
    and frameworks do before a request reaches the application."""
    decoded = re.sub("%2[Ee]", ".", raw)
    output: list[str] = []
    for segment in decoded.split("/")[1:]:
        if segment == "..":
            if output:
                output.pop()
        elif segment != ".":
            output.append(segment)
    trailing = "/" if decoded.endswith(("/.", "/..")) else ""
    return "/" + "/".join(output) + trailing


@dataclass
class Recorded:
    method: str
    path: str  # as the front end routes it (`front_end_path`), without the query
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    status: int = 0  # what the stand-in answered (0 while still answering)
    client_port: int = 0  # tells connections apart
    request_line: str = ""  # the raw request line, byte for byte as the client sent it

    @property
    def segments(self) -> list[str]:
        return [unquote(part) for part in self.path.split("/")]


@dataclass
class Fault:
    """Answer `status` (with `body`, `headers`) to the next `times` matching requests; with
    `delay`, wait that long first. A fault with `status=None` only delays, then answers normally
    (the request is processed: the client may have given up by then)."""

    status: int | None
    times: int
    match: Callable[[Recorded], bool]
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Chaos:
    """Random trouble on every request no queued fault answered: `failure_rate` of them get one
    of `statuses`; `slow_rate` of them are answered only after `delay` (and still processed, as
    a real server would after the client gave up)."""

    failure_rate: float
    statuses: tuple[int, ...] = (500, 503, 429)
    slow_rate: float = 0.0
    delay: float = 1.0
    seed: int = 7
    rng: random.Random = field(init=False)
    lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def draw(self) -> tuple[int | None, float]:
        """(status to fail with or None, seconds to wait first)."""
        with self.lock:
            roll, status = self.rng.random(), self.rng.choice(self.statuses)
        if roll < self.slow_rate:
            return None, self.delay
        if roll < self.slow_rate + self.failure_rate:
            return status, 0.0
        return None, 0.0


def error_body(status: int, message: str, api_error_code: str, rs_code: str) -> dict[str, Any]:
    return {
        "message": message,
        "statusCode": status,
        "apiErrorCode": api_error_code,
        "rsCode": rs_code,
    }


def is_events(request: Recorded) -> bool:
    return request.method == "POST" and request.path.endswith("/events")


def is_upsert(request: Recorded) -> bool:
    return request.method == "PUT"


def any_request(_request: Recorded) -> bool:
    return True


class SaaSquatchStandIn(StandIn):
    def __init__(self, tenant: str = TENANT, api_key: str = API_KEY, port: int = 0) -> None:
        self.tenant = tenant
        self.api_keys = {api_key}
        self.requests: list[Recorded] = []
        self.users: set[tuple[str, str]] = set()  # (accountId, userId) that exist
        self.delivered_events: Counter[str] = Counter()  # idempotencyKey -> accepted (2xx) count
        self.faults: list[Fault] = []
        self.chaos: Chaos | None = None
        self._lock = threading.Lock()
        self._server = LocalServer(self._handler(), port)
        self.base_url = self._server.base_url

    # --- test controls --------------------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.users.clear()
            self.delivered_events.clear()
            self.faults.clear()
            self.chaos = None

    def fail(
        self,
        status: int | None,
        times: int = 1,
        match: Callable[[Recorded], bool] = any_request,
        body: Any = None,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
    ) -> None:
        if body is None and status is not None:
            body = error_body(status, f"stand-in fault {status}", f"FAULT_{status}", f"RS{status}")
        with self._lock:
            self.faults.append(Fault(status, times, match, body, headers or {}, delay))

    def add_user(self, account_id: str, user_id: str) -> None:
        with self._lock:
            self.users.add((account_id, user_id))

    def wait_for(self, condition: Callable[[], bool], timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.05)
        return condition()

    def answered(self, status: int) -> list[Recorded]:
        with self._lock:
            return [request for request in self.requests if request.status == status]

    @staticmethod
    def basic(api_key: str) -> str:
        return "Basic " + base64.b64encode(f":{api_key}".encode()).decode()

    # --- the API -------------------------------------------------------------------------------

    def _answer(self, request: Recorded) -> tuple[int, Any, dict[str, str]]:
        fault = self._take_fault(request)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.status is not None:
                body = fault.body(request) if callable(fault.body) else fault.body
                return fault.status, body, fault.headers
        elif self.chaos is not None:
            status, delay = self.chaos.draw()
            time.sleep(delay)
            if status is not None:
                body = error_body(status, f"chaos {status}", f"CHAOS_{status}", f"RS{status}")
                return status, body, {"Retry-After": "1"} if status == 429 else {}
        if request.headers.get("Authorization") not in {self.basic(k) for k in self.api_keys}:
            return 401, error_body(401, "Unauthorized", "UNAUTHORIZED", "RS001"), {}
        parts = request.segments
        # ['', 'api', 'v1', tenant, 'open', 'account', accountId, 'user', userId, ('events')]
        prefix = ["", "api", "v1", self.tenant, "open", "account"]
        if parts[:6] != prefix or len(parts) not in (9, 10) or parts[7] != "user":
            return 404, error_body(404, "No such endpoint", "NOT_FOUND", "RS404"), {}
        account, user = parts[6], parts[8]
        with self._lock:
            if len(parts) == 10 and parts[9] == "events" and request.method == "POST":
                return self._events(account, user, request.body)
            if len(parts) == 9 and request.method == "PUT":
                return self._upsert(account, user, request.body)
            if len(parts) == 9 and request.method == "DELETE":
                if (account, user) not in self.users:
                    return 404, error_body(404, "User not found", "USER_NOT_FOUND", "RS014"), {}
                self.users.discard((account, user))
                return 200, {"id": user, "accountId": account}, {}
        return 405, error_body(405, "Method not allowed", "METHOD_NOT_ALLOWED", "RS405"), {}

    def _upsert(self, account: str, user: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        if not isinstance(body, dict) or body.get("id") != user or body.get("accountId") != account:
            message = "id and accountId in the body must match the path"
            return 400, error_body(400, message, "INVALID_REQUEST", "RS002"), {}
        if "cookies" in body and referral_cookie_problem(body["cookies"]) is not None:
            # What SaaSquatch answers for a `cookies` it cannot read (its rsCode RS052); it has
            # no published apiErrorCode for it, so this one is ours. The user is not written.
            message = "You have passed an invalid cookie value."
            return 400, error_body(400, message, "INVALID_COOKIE", "RS052"), {}
        self.users.add((account, user))
        return 200, {**body, "referralCode": "PETERGIBBONS"}, {}

    def _events(self, account: str, user: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        if not isinstance(body, dict) or not isinstance(body.get("events"), list):
            return 400, error_body(400, "events are required", "INVALID_REQUEST", "RS003"), {}
        if (account, user) not in self.users:
            message = f"No user with id {user} in account {account}"
            return 404, error_body(404, message, "USER_NOT_FOUND", "RS014"), {}
        key = body.get("idempotencyKey")
        if key is not None and self.delivered_events[key]:
            message = f"Event with idempotency key {key} was already received"
            return 409, error_body(409, message, "IDEMPOTENCY_KEY_CONFLICT", "RS040"), {}
        if key is not None:
            self.delivered_events[key] += 1
        return 200, {"id": user, "accountId": account, "events": body["events"]}, {}

    def _take_fault(self, request: Recorded) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and fault.match(request):
                    fault.times -= 1
                    return fault
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stand_in = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as SaaSquatch's front end

            def _handle(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw
                request = Recorded(
                    self.command,
                    front_end_path(split.path),
                    parse_qs(split.query),
                    dict(self.headers),
                    body,
                    client_port=self.client_address[1],
                    request_line=self.requestline,
                )
                with stand_in._lock:
                    stand_in.requests.append(request)
                status, body_out, fault_headers = stand_in._answer(request)
                headers = dict(fault_headers)
                request.status = status
                if isinstance(body_out, (bytes, str)):
                    data = body_out.encode() if isinstance(body_out, str) else body_out
                    content_type = headers.pop("Content-Type", "text/html; charset=utf-8")
                    answer(self, status, data, content_type, headers)
                elif body_out is None:
                    answer(self, status, b"", headers=headers)
                else:
                    answer_json(self, status, body_out, headers)

            do_GET = do_PUT = do_POST = do_DELETE = _handle

        return Handler
