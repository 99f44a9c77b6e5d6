"""A handler served the way the Functions Framework serves an HTTP function, in-process."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import flask
import werkzeug.routing
import werkzeug.serving
from flask.testing import FlaskClient

from common.request_log import Handler

# The fixtures that build a handler from settings (keyword arguments, spelled as the
# environment spells them) and serve it.
MakeIngest = Callable[..., FlaskClient]
MakeDeliver = Callable[..., FlaskClient]


def client_for(handler: Handler) -> FlaskClient:
    """A Flask test client routing every path and method to `handler`, as the framework does
    (its `_configure_app` mounts the function on `/` and `/<path:path>` for all methods)."""
    app = flask.Flask("function")
    app.url_map.add(werkzeug.routing.Rule("/", defaults={"path": ""}, endpoint="run"))
    app.url_map.add(werkzeug.routing.Rule("/<path:path>", endpoint="run"))
    app.view_functions["run"] = lambda path: handler(flask.request._get_current_object())
    return app.test_client()


@contextmanager
def served_in_thread(handler: Handler) -> Iterator[str]:
    """`handler` behind a real HTTP server on a free local port, in this process (werkzeug's
    threaded server): real clients (an SDK, `requests`) speak to it over a socket, and the
    handler keeps the in-memory ports it was given. Yields the base URL."""
    app = client_for(handler).application
    server = werkzeug.serving.make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        thread.join(5)
