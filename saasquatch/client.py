"""One SaaSquatch REST client per process: a pooled session, Basic auth, timeouts, typed errors."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import requests
from requests.adapters import HTTPAdapter

from common.retry_after import parse_retry_after
from common.secrets import FixedSecret, Secret

from .calls import Call
from .errors import ApiError, NoAnswer, NoAnswerKind, UnexpectedAnswer, UnsendableBody

# Where the API key comes from (a fixed value, or a Secret Manager version, cached).
ApiKey = Secret
FixedApiKey = FixedSecret


@dataclass(frozen=True, slots=True)
class Answer:
    """A successful answer: its status and its JSON body (None when it had none)."""

    status: int
    body: Any = None


def basic_auth(api_key: str) -> str:
    """SaaSquatch's Basic auth: an empty user name and the API key as the password."""
    return "Basic " + base64.b64encode(f":{api_key}".encode()).decode("ascii")


def tenant_url(base_url: str, tenant_alias: str) -> str:
    return f"{base_url.rstrip('/')}/api/v1/{quote(tenant_alias, safe='')}"


class SaaSquatchClient:
    """Sends the mapper's `Call`s. Safe to share between threads; reuses connections.

    It never retries on its own: redelivery is Pub/Sub's job, with its backoff. The one exception
    is a 401 right after the API key changed in Secret Manager (rotation), which is resent once.
    """

    def __init__(
        self,
        base_url: str,
        tenant_alias: str,
        api_key: ApiKey,
        timeout: float,
        pool_size: int = 32,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._root = tenant_url(base_url, tenant_alias)
        self._api_key = api_key
        # A short connect timeout: an unreachable host should not use up the whole budget.
        self._timeout = (min(timeout, 3.05), timeout)
        self._clock = clock
        self._session = session or requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)

    def url(self, call: Call) -> str:
        """The call's URL exactly as sent: the root, the path as built, the query encoded."""
        query = f"?{urlencode(call.params)}" if call.params else ""
        return self._root + call.path + query

    def send(self, call: Call) -> Answer:
        """The answer to `call`, or a `SaaSquatchError` saying why there is none."""
        data = None
        if call.body is not None:
            try:
                data = json.dumps(call.body, ensure_ascii=False, allow_nan=False).encode("utf-8")
            except (TypeError, ValueError) as error:
                raise UnsendableBody(f"{call.purpose} body is not valid JSON: {error}") from None
        response = self._request(call, data, self._key())
        if response.status_code == 401 and self._rotated():
            response = self._request(call, data, self._key())
        return self._read(response)

    def _key(self) -> str:
        try:
            return self._api_key.value()
        except Exception as error:
            raise NoAnswer(NoAnswerKind.KEY_UNAVAILABLE, f"API key unavailable: {error}") from None

    def _rotated(self) -> bool:
        try:
            return self._api_key.refresh()
        except Exception:
            return False

    def _request(self, call: Call, data: bytes | None, api_key: str) -> requests.Response:
        headers = {"Accept": "application/json", "Authorization": basic_auth(api_key)}
        if data is not None:
            headers["Content-Type"] = "application/json"
        headers.update(call.headers)
        url = self.url(call)
        prepared = self._session.prepare_request(
            requests.Request(call.method, url, data=data, headers=headers)
        )
        # requests re-quotes the URL as it prepares it, un-escaping unreserved characters
        # (`%2E` becomes `.`): the path goes out byte for byte as it was built instead.
        prepared.url = url
        settings = self._session.merge_environment_settings(url, {}, None, None, None)
        try:
            return self._session.send(
                prepared, timeout=self._timeout, allow_redirects=False, **settings
            )
        except requests.Timeout:
            raise NoAnswer(NoAnswerKind.TIMEOUT, "no answer within the timeout") from None
        except requests.RequestException as error:
            # Connection refused or reset, DNS failure, TLS error: the host may be back later.
            raise NoAnswer(NoAnswerKind.UNREACHABLE, type(error).__name__) from None

    def _read(self, response: requests.Response) -> Answer:
        status = response.status_code
        content_type = response.headers.get("Content-Type", "")
        body = _json_body(response)
        if 200 <= status < 300:
            if body is _NOT_JSON:
                raise UnexpectedAnswer(status, content_type)
            return Answer(status, body)
        retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock())
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            raise ApiError(
                body["message"],
                status,
                _text_or_none(body.get("apiErrorCode")),
                _text_or_none(body.get("rsCode")),
                retry_after,
            )
        raise UnexpectedAnswer(status, content_type, retry_after)


_NOT_JSON = object()


def _json_body(response: requests.Response) -> Any:
    """The parsed body; None when empty; `_NOT_JSON` when it is something else (an HTML page)."""
    if not response.content.strip():
        return None
    try:
        return json.loads(response.content)
    except ValueError:
        return _NOT_JSON


def _text_or_none(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value)
