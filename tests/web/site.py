"""What the browser tests run against: a local web site serving the test pages, the plugin
(`web/`) and the pinned analytics-next, and a local Segment tracking API that records the raw
bodies analytics.js sends. Both are quiet local servers (tools.local_http) on 127.0.0.1.

The Segment stand-in is on another port, so another origin, as api.segment.io is: it answers the
CORS preflight the way Segment does, or the browser would never send the body.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import BrowserContext, ConsoleMessage, Cookie, Page, Route

from tools.local_http import LocalServer, QuietHandler, answer, answer_json
from tools.processes import ROOT

from ..support.local_http import StandIn

HERE = Path(__file__).parent
# Served at /web/, /vendor/ and / (the pages); nothing else of the repository is reachable.
ROOTS = {"web": ROOT / "web", "vendor": HERE / "vendor", "": HERE / "pages"}
WRITE_KEY = "browser-test-write-key"

# The pinned analytics-next (npm @segment/analytics-next 1.84.3, its dist/umd/index.js, MIT, the
# license beside it), vendored so the browser tests need neither npm nor the network. Its sha256,
# so an edit to the file shows.
ANALYTICS_NEXT = HERE / "vendor" / "analytics-next-1.84.3.umd.js"
ANALYTICS_NEXT_SHA256 = "e0bed4badf9ec12029a63ef13f22acb9d26d7c7b38d721da8e4e552e7bd33088"


def squatch_encode(value: Any) -> str:
    """`value` as squatch.js stores it in the cookie: `JSON.stringify`, UTF-8, base64url without
    padding."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def squatch_decode(value: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode())


class Site(StandIn):
    """The test pages, the plugin and analytics-next, over HTTP, as a web server serves them."""

    def __init__(self) -> None:
        class Handler(QuietHandler):
            def do_GET(self: BaseHTTPRequestHandler) -> None:
                path = urlsplit(self.path).path.lstrip("/")
                top, _, rest = path.partition("/")
                base, name = (ROOTS[top], rest) if top in ROOTS and rest else (ROOTS[""], path)
                file = (base / name).resolve()
                if not name or not file.is_relative_to(base) or not file.is_file():
                    answer_json(self, 404, {"error": "not found"})
                    return
                kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
                if file.suffix in {".js", ".mjs"}:
                    kind = "text/javascript"
                answer(self, 200, file.read_bytes(), content_type=kind)

        self._server = LocalServer(Handler)
        self.base_url = self._server.base_url
        self.port = int(self.base_url.rpartition(":")[2])


@dataclass
class Sent:
    """One request analytics.js made to the tracking API: `/v1/i` is an identify."""

    path: str
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> dict[str, Any]:
        return json.loads(self.raw)


def cors(request: BaseHTTPRequestHandler) -> dict[str, str]:
    """What Segment's API answers a browser: any origin, the headers it asked for (the write
    key comes as an `Authorization` header, which always needs the preflight)."""
    return {
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Allow-Methods": "POST",
        "Access-Control-Allow-Headers": request.headers.get("Access-Control-Request-Headers") or "",
    }


class SegmentApi(StandIn):
    """Segment's tracking API as analytics.js calls it (`POST /v1/{i,t,p,...}`, the write key in
    Basic auth, a CORS preflight first): records every body as sent and answers 200."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self.sent: list[Sent] = []
        stand_in = self

        class Handler(QuietHandler):
            def do_OPTIONS(self: BaseHTTPRequestHandler) -> None:
                answer(self, 204, b"", headers=cors(self))

            def do_POST(self: BaseHTTPRequestHandler) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with stand_in._lock:
                    stand_in.sent.append(Sent(self.path, dict(self.headers), raw))
                    stand_in._lock.notify_all()
                answer_json(self, 200, {"success": True}, headers=cors(self))

        self._server = LocalServer(Handler)
        # analytics.js is given `host:port/v1` as its `apiHost` (Segment's is `api.segment.io/v1`).
        self.api_host = self._server.base_url.removeprefix("http://") + "/v1"

    def reset(self) -> None:
        with self._lock:
            self.sent.clear()

    def wait_for(self, found: Callable[[list[Sent]], Any], timeout: float = 15.0) -> Any:
        """The first truthy `found(sent)`, as soon as a request makes it so."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not (result := found(list(self.sent))):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"not sent; sent so far: {[s.path for s in self.sent]}")
                self._lock.wait(left)
            return result

    def identifies(self, user_id: str) -> list[dict[str, Any]]:
        return [s.body for s in self.sent if s.path == "/v1/i" and s.body["userId"] == user_id]


# Chromium from Debian's package, as make test and CI install it; never a downloaded browser.
CHROMIUM = Path("/usr/bin/chromium")
# What Chromium needs here: no sandbox (containers), no GPU, and none of its own traffic (the
# network is closed: without these it keeps opening connections that are refused). Names under
# shop.test resolve to this machine, so a landing page and an app can be sibling subdomains.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP *.shop.test 127.0.0.1",
]
LOCAL_HOSTS = ("127.0.0.1", "shop.test")


class Browsing:
    """One test's browser context (its own cookies and storage), the page's script errors and
    console errors/warnings, and every request that would have left this machine (refused)."""

    def __init__(self, context: BrowserContext, site: Site, api: SegmentApi) -> None:
        self.context = context
        self.site = site
        self.api = api
        self.problems: list[str] = []
        self.console: list[str] = []
        self.outside: list[str] = []
        context.route("**/*", self._local_only)

    def _local_only(self, route: Route) -> None:
        host = urlsplit(route.request.url).hostname or ""
        if host == LOCAL_HOSTS[0] or host == LOCAL_HOSTS[1] or host.endswith("." + LOCAL_HOSTS[1]):
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()

    def url(self, host: str, page: str, query: str = "") -> str:
        return f"http://{host}:{self.site.port}/{page}" + (f"?{query}" if query else "")

    def open(self, url: str, **plugin: Any) -> Page:
        """`url` loaded with analytics.js ready, the plugin given `plugin` as its options."""
        page = self.context.new_page()
        page.on("pageerror", lambda error: self.problems.append(f"pageerror: {error}"))
        page.on("console", self._console)
        test = {"writeKey": WRITE_KEY, "apiHost": self.api.api_host, "plugin": plugin}
        page.add_init_script(f"window.SQ_TEST = {json.dumps(test)};")
        page.goto(url)
        assert page.evaluate("window.analyticsReady") == "ready"
        return page

    def _console(self, message: ConsoleMessage) -> None:
        self.console.append(f"{message.type}: {message.text}")
        if message.type in {"error", "warning"}:
            self.problems.append(f"console {message.type}: {message.text}")

    def identify(
        self,
        page: Page,
        user_id: str,
        traits: dict[str, Any],
        options: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """`analytics.identify(...)` on `page`; the body Segment's API received for it."""
        page.evaluate(
            "([id, traits, options]) => analytics.identify(id, traits, options).then(() => true)",
            [user_id, traits, options or {}],
        )
        [body] = self.api.wait_for(lambda _sent: self.api.identifies(user_id))
        return body

    def cookies(self, name: str = "_saasquatch") -> list[Cookie]:
        return [cookie for cookie in self.context.cookies() if cookie["name"] == name]
