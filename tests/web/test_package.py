"""The plugin as a package outside the browser: Node (Debian's nodejs) loads it the ways a
bundler's build or a test runner would, with `require()` (CommonJS) and `import` (the ES module).
Loading must give the API and never touch the page (there is none): no cookie is read or written
until analytics.js loads the plugin in a browser."""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest

from ..support.processes import Processes

API = ["saasquatchCookie", "pushCookie", "cookieValue"]

# What each way of loading gives, and that the plugin is callable with no document around.
REPORT = """
const report = (api, extra) => console.log(JSON.stringify({
  keys: Object.keys(api),
  global: api.saasquatchCookie === globalThis.SaaSquatchSegment.saasquatchCookie,
  plugin: [api.saasquatchCookie().name, api.saasquatchCookie().type],
  cookie: api.cookieValue() === undefined,
  identified: api.saasquatchCookie().identify({ event: { integrations: {} } }).event,
  ...extra,
}));
"""


def node(processes: Processes, *args: str) -> dict[str, Any]:
    binary = shutil.which("node")
    if binary is None:
        pytest.fail("node is missing: Debian's nodejs package (make test installs it)")
    done = processes.run([binary, *args], timeout=30)
    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    return json.loads(line)


@pytest.mark.parametrize("path", ["./web/saasquatch-segment.js", "./web"])
def test_require_gives_the_plugin(processes: Processes, path: str) -> None:
    """`./web` is the package folder: `require` resolves it through package.json's `main`."""
    script = REPORT + f"report(require({json.dumps(path)}), {{}});"
    assert node(processes, "-e", script) == {
        "keys": API,
        "global": True,
        "plugin": ["SaaSquatch referral cookie", "enrichment"],
        "cookie": True,
        "identified": {"integrations": {}},
    }


def test_import_gives_the_plugin_and_the_same_functions(processes: Processes) -> None:
    script = REPORT + (
        'import("./web/saasquatch-segment.mjs").then((module) => report(module, {'
        " default: module.default === module.saasquatchCookie,"
        ' commonjs: require("./web/saasquatch-segment.js").pushCookie === module.pushCookie }));'
    )
    result = node(processes, "-e", script)
    assert result["keys"] == sorted([*API, "default"])
    assert (result["global"], result["default"], result["commonjs"]) == (True, True, True)
    assert result["plugin"] == ["SaaSquatch referral cookie", "enrichment"]
