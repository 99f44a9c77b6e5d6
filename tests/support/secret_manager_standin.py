"""A local HTTP server answering like Secret Manager's REST API (`GET /v1/{version}:access`)."""

from __future__ import annotations

import base64
from typing import Any

from tools.local_http import LocalServer, QuietHandler, answer_json

from .local_http import StandIn, google_error


class SecretManagerStandIn(StandIn):
    def __init__(self) -> None:
        self.values: dict[str, str] = {}  # full version name -> secret text
        self.down = False
        self.disabled: set[str] = (
            set()
        )  # versions answered as Secret Manager answers a disabled one
        self.requests: list[str] = []
        stand_in = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                stand_in.requests.append(self.path)
                if stand_in.down:
                    return self._json(
                        503, google_error(503, "UNAVAILABLE", "The service is unavailable.")
                    )
                name = self.path.split("?", 1)[0].removeprefix("/v1/").removesuffix(":access")
                if name in stand_in.disabled:
                    message = f"Secret Version [{name}] is in DISABLED state."
                    return self._json(400, google_error(400, "FAILED_PRECONDITION", message))
                if (
                    not self.path.split("?", 1)[0].endswith(":access")
                    or name not in stand_in.values
                ):
                    return self._json(
                        404, google_error(404, "NOT_FOUND", f"Secret [{name}] not found.")
                    )
                data = base64.b64encode(stand_in.values[name].encode()).decode()
                return self._json(200, {"name": name, "payload": {"data": data}})

            def _json(self, status: int, body: dict[str, Any]) -> None:
                answer_json(self, status, body)

        self._server = LocalServer(Handler)
        self.endpoint = self._server.base_url
