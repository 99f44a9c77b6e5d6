"""What the stand-ins add to tools.local_http (the quiet local HTTP server they all use): a base
whose server runs inside `with`, and Google's REST error body."""

from __future__ import annotations

from typing import Any, Self

from tools.local_http import LocalServer


class StandIn:
    """A stand-in whose server (`self._server`, made by the subclass) runs inside `with`."""

    _server: LocalServer

    def __enter__(self) -> Self:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.close()


def google_error(code: int, status: str, message: str) -> dict[str, Any]:
    """An error body as Google's REST APIs write it."""
    return {"error": {"code": code, "message": message, "status": status}}
