"""A handler served the way the Functions Framework serves an HTTP function, in-process."""

from __future__ import annotations

from collections.abc import Callable

import flask
import werkzeug.routing
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
