"""A local HTTP server answering like Cloud Logging's metrics API (v2) and Cloud Monitoring's
dashboards (v1) and alert policies (v3) REST APIs, as the real gcloud calls them.

It stores what it is sent as the APIs do: proto3 JSON leaves out zero and empty values, and the
API adds fields of its own (an etag, names, creation records), so a reader of its answers has to
cope with both, as with the real ones.

Like Cloud Monitoring, it refuses an alert policy on a log-based metric it does not see: one that
does not exist, or (`unseen_for`) one created so recently that Monitoring has not caught up, with
the real answer, 404 "Cannot find metric(s) ...".
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

from tools.local_http import LocalServer, QuietHandler, answer_json

from .local_http import StandIn, google_error

USER_METRIC = re.compile(r'metric\.type="logging\.googleapis\.com/user/([\w-]+)"')
_ROUTES = (
    ("metrics", re.compile(r"^/v2/projects/([^/]+)/metrics(?:/([^/?]+))?$")),
    ("dashboards", re.compile(r"^/v1/projects/([^/]+)/dashboards(?:/([^/?]+))?$")),
    ("policies", re.compile(r"^/v3/projects/([^/]+)/alertPolicies(?:/([^/?]+))?$")),
)


def stored(value: Any) -> Any:
    """`value` as proto3 JSON keeps it: without zeros, empty strings, false or empty lists."""
    if isinstance(value, dict):
        kept = {key: stored(item) for key, item in value.items()}
        return {key: item for key, item in kept.items() if item not in (0, "", False, [], {})}
    if isinstance(value, list):
        return [stored(item) for item in value]
    return value


class MonitoringStandIn(StandIn):
    def __init__(self) -> None:
        self.metrics: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        self.policies: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, Any]] = []  # method, path, JSON body
        # How many more alert-policy writes naming a log-based metric are refused as if
        # Monitoring did not see the metrics yet (it takes "up to 10 minutes").
        self.unseen_for = 0
        numbers = itertools.count(1001)
        stand_in = self

        class Handler(QuietHandler):
            def _route(self) -> tuple[str, str, str | None, Any]:
                path = self.path.split("?", 1)[0]
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                stand_in.requests.append((self.command, path, body))
                for kind, pattern in _ROUTES:
                    if match := pattern.match(path):
                        return kind, match.group(1), match.group(2), body
                return "", "", None, body

            def _answer(self) -> None:
                kind, project, name, body = self._route()
                if not kind:
                    return answer_json(self, 404, google_error(404, "NOT_FOUND", self.path))
                store = getattr(stand_in, kind)
                if self.command == "GET" and name is None:
                    return answer_json(self, 200, {"alertPolicies": list(store.values())})
                if self.command == "GET":
                    if name not in store:
                        return answer_json(
                            self, 404, google_error(404, "NOT_FOUND", f"{name} not found")
                        )
                    return answer_json(self, 200, store[name])
                if self.command == "POST":
                    name = self._new_name(kind, project, body)
                    if name in store:
                        message = f"{name} already exists"
                        return answer_json(self, 409, google_error(409, "ALREADY_EXISTS", message))
                elif name not in store:
                    return answer_json(
                        self, 404, google_error(404, "NOT_FOUND", f"{name} not found")
                    )
                elif kind == "dashboards" and body.get("etag") != store[name]["etag"]:
                    message = "etag does not match the dashboard's"
                    return answer_json(self, 409, google_error(409, "ABORTED", message))
                if kind == "policies" and (unseen := self._unseen_metric(body)):
                    message = (
                        f'Cannot find metric(s) that match type = "{unseen}". If a metric was '
                        "created recently, it could take up to 10 minutes to become available. "
                        "Please try again soon."
                    )
                    return answer_json(self, 404, google_error(404, "NOT_FOUND", message))
                store[name] = self._as_kept(kind, project, name, body)
                return answer_json(self, 200, store[name])

            def _unseen_metric(self, body: dict[str, Any]) -> str | None:
                """The first log-based metric the policy names that Monitoring would not see."""
                texts = [
                    str(part.get("filter", ""))
                    for condition in body.get("conditions", [])
                    for part in condition.values()
                    if isinstance(part, dict)
                ]
                named = [name for text in texts for name in USER_METRIC.findall(text)]
                missing = [name for name in named if name not in stand_in.metrics]
                if not missing and named and stand_in.unseen_for > 0:
                    stand_in.unseen_for -= 1
                    missing = named
                return f"logging.googleapis.com/user/{missing[0]}" if missing else None

            def _new_name(self, kind: str, project: str, body: dict[str, Any]) -> str:
                if kind == "metrics":
                    return body["name"]
                if kind == "dashboards":
                    return body["name"].rsplit("/", 1)[1]
                return str(next(numbers))

            def _as_kept(
                self, kind: str, project: str, name: str, body: dict[str, Any]
            ) -> dict[str, Any]:
                kept = stored(body)
                if kind == "metrics":
                    metric_type = f"logging.googleapis.com/user/{name}"
                    kept["metricDescriptor"] = {
                        **kept.get("metricDescriptor", {}),
                        "name": f"projects/{project}/metricDescriptors/{metric_type}",
                        "type": metric_type,
                    }
                    kept.setdefault("createTime", "2026-12-01T00:00:00Z")
                elif kind == "dashboards":
                    kept["etag"] = f"etag-{next(numbers)}"
                else:
                    kept["name"] = f"projects/{project}/alertPolicies/{name}"
                    for index, condition in enumerate(kept.get("conditions", [])):
                        condition["name"] = f"{kept['name']}/conditions/{index}"
                    kept["creationRecord"] = {"mutateTime": "2026-12-01T00:00:00Z"}
                return kept

            do_GET = do_POST = do_PUT = do_PATCH = _answer

        self._server = LocalServer(Handler)
        self.endpoint = f"{self._server.base_url}/"
