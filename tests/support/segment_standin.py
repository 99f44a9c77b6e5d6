"""A local Segment HTTP Tracking API: `POST /v1/batch` with Basic auth (the write key as the
user name), records each batch, answers faults on cue (status and `Retry-After`)."""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tools.local_http import LocalServer, QuietHandler, answer_json

from .local_http import StandIn

WRITE_KEY = "segment-test-write-key"


@dataclass
class Batch:
    headers: dict[str, str]
    body: Any
    status: int


@dataclass
class SegmentStandIn(StandIn):
    batches: list[Batch] = field(default_factory=list)
    faults: list[tuple[int, dict[str, str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        stand_in = self

        class Handler(QuietHandler):
            def do_POST(self: BaseHTTPRequestHandler) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                expected = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
                status, extra = 200, {}
                with stand_in._lock:
                    if self.path != "/v1/batch":
                        status = 404
                    elif self.headers.get("Authorization") != expected:
                        status = 401
                    elif stand_in.faults:
                        status, extra = stand_in.faults.pop(0)
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        body, status = raw, 400
                    stand_in.batches.append(Batch(dict(self.headers), body, status))
                answer_json(self, status, {"success": status == 200}, headers=extra)

        self._server = LocalServer(Handler)
        self.base_url = self._server.base_url

    def fail(self, status: int, times: int = 1, **headers: str) -> None:
        with self._lock:
            self.faults.extend([(status, headers)] * times)

    def accepted(self) -> list[dict[str, Any]]:
        """Every message of every batch answered 200, in order."""
        with self._lock:
            return [m for b in self.batches if b.status == 200 for m in b.body["batch"]]
