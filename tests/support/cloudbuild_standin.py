"""A local HTTP server answering like Cloud Storage (bucket lookups, uploads) and Cloud Build
(create a build, get it) as `gcloud builds submit` calls them, recording each build it is asked
to run. Every build succeeds at once."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tools.local_http import LocalServer, QuietHandler, answer_json

from .gcloud import empty_config_env, installed_gcloud
from .local_http import StandIn, google_error
from .processes import Processes

BUILD_ID = "b-0001"
OPERATION_METADATA = "type.googleapis.com/google.devtools.cloudbuild.v1.BuildOperationMetadata"


class CloudBuildStandIn(StandIn):
    def __init__(self) -> None:
        self.builds: list[dict[str, Any]] = []  # the bodies of the builds asked for
        self.uploads: list[str] = []  # object names
        stand_in = self

        class Handler(QuietHandler):
            def _answer(self) -> None:
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if bucket := re.fullmatch(r"/storage/v1/b/([^/]+)", url.path):
                    name = unquote(bucket.group(1))
                    return answer_json(self, 200, {"id": name, "name": name, "location": "US"})
                if url.path == "/storage/v1/b":
                    name = query["prefix"][0]
                    return answer_json(self, 200, {"items": [{"id": name, "name": name}]})
                if upload := re.fullmatch(r"/upload/storage/v1/b/([^/]+)/o", url.path):
                    # multipart: the object's metadata (with its size) comes first, as JSON
                    size = re.search(rb'"size": "(\d+)"', body)
                    name = query["name"][0]
                    stand_in.uploads.append(name)
                    return answer_json(
                        self,
                        200,
                        {
                            "name": name,
                            "bucket": upload.group(1),
                            "generation": "1",
                            "size": size.group(1).decode() if size else str(len(body)),
                        },
                    )
                builds = re.fullmatch(r"/v1/projects/([^/]+)/locations/([^/]+)/builds", url.path)
                if builds and self.command == "POST":
                    build = json.loads(body)
                    stand_in.builds.append(build)
                    project = builds.group(1)
                    metadata = {
                        "@type": OPERATION_METADATA,
                        "build": {"id": BUILD_ID, "projectId": project, "status": "QUEUED"},
                    }
                    return answer_json(
                        self, 200, {"name": f"operations/build/{project}/x", "metadata": metadata}
                    )
                if url.path.endswith(f"/builds/{BUILD_ID}"):
                    finished = {**stand_in.builds[-1], "id": BUILD_ID, "status": "SUCCESS"}
                    return answer_json(self, 200, finished)
                return answer_json(self, 404, google_error(404, "NOT_FOUND", self.path))

            do_GET = do_POST = do_PUT = do_PATCH = _answer

        self._server = LocalServer(Handler)
        self.endpoint = f"{self._server.base_url}/"


def submitted_build(
    script: str, tmp_path: Path, processes: Processes, project: str
) -> dict[str, Any]:
    """The one build Cloud Build is asked for when `script` (a `gcloud beta builds submit` as the
    docs write it) runs through the installed gcloud against this stand-in."""
    token = tmp_path / "token"
    token.write_text("stand-in-token")
    bin_dir = tmp_path / "gcloud-bin"
    bin_dir.mkdir()
    (bin_dir / "gcloud").symlink_to(installed_gcloud())
    with CloudBuildStandIn() as api:
        env = empty_config_env(
            tmp_path / "gcloud-config",
            PATH=f"{bin_dir}:/usr/bin:/bin",
            CLOUDSDK_AUTH_ACCESS_TOKEN_FILE=str(token),
            CLOUDSDK_CORE_PROJECT=project,
            CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE=api.endpoint,
            CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDBUILD=api.endpoint,
            CLOUDSDK_API_ENDPOINT_OVERRIDES_LOGGING=api.endpoint,
        )
        done = processes.run(["bash", "-c", script], env=env, timeout=180)
        assert api.builds, (done.stdout, done.stderr)
    [build] = api.builds
    return build
