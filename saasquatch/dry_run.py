"""DRY_RUN: the calls are logged instead of sent, and count as delivered."""

from __future__ import annotations

import logging
import re

from common import logs

from .calls import Call
from .client import Answer, tenant_url

# Written in the URL when no tenant is configured, so the log still shows the full shape.
PLACEHOLDER_TENANT = "TENANT_ALIAS"
_USER_IDS = re.compile(r"/open/account/[^/?]+/user/[^/?]+")


class DryRunClient:
    """Same `send` as the real client. The log shows what each call is made of, never what it
    carries: the method, the URL with `{accountId}`/`{userId}` in place of the ids, the query's
    and the end user's headers' names, and the body's shape (field names, value types and sizes;
    event keys as they are). `python -m mapper` shows the values, on your own terminal."""

    def __init__(self, base_url: str, tenant_alias: str, logger: logging.Logger) -> None:
        self._root = tenant_url(base_url, tenant_alias or PLACEHOLDER_TENANT)
        self._log = logger

    def url(self, call: Call) -> str:
        return self._root + call.path

    def send(self, call: Call) -> Answer:
        shown = {
            "dry_run": True,
            "purpose": str(call.purpose),
            "method": call.method,
            "url": _USER_IDS.sub("/open/account/{accountId}/user/{userId}", self.url(call)),
        }
        if call.params:
            shown["params"] = sorted(call.params)
        if call.headers:
            shown["end_user_headers"] = sorted(call.headers)
        if call.body is not None:
            shown["body"] = logs.shape(call.body)
        self._log.info("dry run: %s %s", call.method, shown["url"], extra={"fields": shown})
        return Answer(200, None)
