"""The import rules of docs/architecture.md, checked on the source: imports point inward, neither
side imports the other, the mapper depends only on pure leaves, nothing imports `main.py`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tools.processes import ROOT

OURS = {
    "main",
    "subscription",
    "stream",
    "receiving",
    "pushes",
    "mapper",
    "saasquatch",
    "segment_api",
    "publisher",
    "common",
    "tools",
}
DIRECTIONS = {"subscription", "stream"}
# The pure mappers, each direction's: they may use only these pure leaves.
# (`stream/__init__.py` runs whenever `stream.mapping` is imported, so it is held to the rule too.)
PURE_MAPPERS = {
    "mapper": "mapper/",
    "stream": "stream/mapping.py stream/table.py stream/__init__.py",
}
# What a previewing entry point (`python -m mapper`, `python -m stream`) may not import of its
# own package: the receiver and the consumer.
EDGES = ("stream.receive", "stream.forward", "stream.signature", "stream.receive_settings")
MAPPER_MAY_USE = {"saasquatch.calls", "common.outcomes", "common.text"}
# What each package may import of ours, besides itself.
ALLOWED = {
    "main": {"common", "subscription", "stream"},
    "subscription": {"common", "publisher", "mapper", "saasquatch", "receiving", "pushes"},
    "stream": {"common", "publisher", "segment_api", "receiving", "pushes"},
    "receiving": {"common", "publisher"},
    "pushes": {"common", "publisher"},
    "saasquatch": {"common"},
    "segment_api": {"common"},
    "publisher": set(),
    "common": set(),
    "tools": OURS - {"main", "tools"},
    # The previews are entry points: they read documents with common.documents.
    "mapper/__main__": {"common"},
    "stream/__main__": {"common"},
}


def modules() -> list[Path]:
    found = [ROOT / "main.py"]
    for package in OURS - {"main"}:
        found += sorted((ROOT / package).rglob("*.py"))
    return found


def imported(path: Path) -> set[str]:
    """Dotted names of ours that `path` imports (relative imports resolved)."""
    return imported_by(path.read_text(), path.relative_to(ROOT).with_suffix("").parts[:-1])


DYNAMIC = {"import_module", "__import__"}


def imported_by(source: str, package: tuple[str, ...]) -> set[str]:
    tree = ast.parse(source)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) in DYNAMIC
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value)  # importlib.import_module("x") / __import__("x")
        elif isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return {name for name in names if name.split(".")[0] in OURS}


def top(path: Path) -> str:
    return path.relative_to(ROOT).parts[0].removesuffix(".py")


def is_pure_mapper(path: Path) -> bool:
    """Modules of a direction's pure mapper (`mapper/`, `stream/mapping.py`, `stream/table.py`);
    the previews (`__main__`) are entry points, not part of it."""
    relative = path.relative_to(ROOT).as_posix()
    if relative.endswith("__main__.py"):
        return False
    return any(
        relative.startswith(prefix) for spec in PURE_MAPPERS.values() for prefix in spec.split()
    )


def stray_imports(path: Path, names: set[str]) -> set[str]:
    """What the module at `path` imports against the rules."""
    own = top(path)
    if is_pure_mapper(path):
        outside = {name for name in names if name.split(".")[0] != own}
        if own == "stream":  # its mapper is two modules of the package, nothing else of it
            outside |= {
                name
                for name in names
                if name.split(".")[0] == "stream"
                and name.split(".")[1:2] not in (["mapping"], ["table"])
            }
        return {name for name in outside if not name.startswith(tuple(MAPPER_MAY_USE))}
    key = f"{own}/__main__" if path.name == "__main__.py" and f"{own}/__main__" in ALLOWED else own
    allowed = ALLOWED[key] | {own}
    stray = {name for name in names if name.split(".")[0] not in allowed}
    if path.name == "__main__.py":
        stray |= {name for name in names if name.startswith(EDGES)}
    return stray


@pytest.mark.parametrize("path", modules(), ids=lambda path: str(path.relative_to(ROOT)))
def test_imports_point_inward(path: Path) -> None:
    stray = stray_imports(path, imported(path))
    assert not stray, f"{path.relative_to(ROOT)} may not import {sorted(stray)}"


def test_every_package_of_ours_is_under_the_rules() -> None:
    """A new top-level package must be placed in the rules, or it could carry one direction
    into the other unseen."""
    packages = {
        path.parent.name
        for path in ROOT.glob("*/__init__.py")
        if path.parent.name not in {"tests", "bench"}
    }
    assert packages <= OURS, f"not in the layout rules: {sorted(packages - OURS)}"


def test_neither_direction_imports_the_other() -> None:
    for path in modules():
        own = top(path)
        if own in DIRECTIONS:
            other = (DIRECTIONS - {own}).pop()
            crossing = {name for name in imported(path) if name.split(".")[0] == other}
            assert not crossing, f"{path.relative_to(ROOT)} imports {sorted(crossing)}"


def test_the_pure_mappers_import_no_receiver_or_consumer() -> None:
    edges = {"receiving", "pushes", "publisher", "tools", "main"}
    pure = [path for path in modules() if is_pure_mapper(path)]
    assert {top(path) for path in pure} == {"mapper", "stream"}
    for path in pure:
        names = imported(path)
        assert not {name for name in names if name.split(".")[0] in edges}, path
        assert not {name for name in names if name.startswith(("stream.receive", "stream.forward"))}


def test_the_checker_sees_a_stray_import() -> None:
    names = imported_by("from stream.forward import send\nfrom . import body\n", ("subscription",))
    assert names == {"stream.forward", "stream.forward.send", "subscription", "subscription.body"}
    assert stray_imports(ROOT / "subscription" / "ingest.py", names) == {
        "stream.forward",
        "stream.forward.send",
    }
    pure = imported_by("from saasquatch.client import Answer\n", ("mapper",))
    assert stray_imports(ROOT / "mapper" / "track.py", pure) == pure
    receiver = imported_by("from .receive import create_handler\n", ("stream",))
    assert stray_imports(ROOT / "stream" / "mapping.py", receiver) == receiver
    assert stray_imports(ROOT / "stream" / "forward.py", receiver) == set()
    assert stray_imports(ROOT / "tools" / "x.py", imported_by("import main\n", ("tools",))) == {
        "main"
    }
    dynamic = imported_by('importlib.import_module("pushes.consumer")\n', ("mapper",))
    assert stray_imports(ROOT / "mapper" / "track.py", dynamic) == {"pushes.consumer"}
    edge = imported_by("import pushes.consumer\n", ("stream",))
    assert stray_imports(ROOT / "stream" / "__init__.py", edge) == {"pushes.consumer"}
    preview = imported_by("from .receive import create_handler\n", ("stream",))
    assert stray_imports(ROOT / "stream" / "__main__.py", preview) == preview


def test_main_only_binds() -> None:
    lines = (ROOT / "main.py").read_text().splitlines()
    assert len(lines) < 80
    assert {name.split(".")[0] for name in imported(ROOT / "main.py")} <= {
        "common",
        "subscription",
        "stream",
    }


def test_no_test_module_imports_another() -> None:
    """Shared test code lives in tests/support (or factories.py), never in a test module."""
    tests = ROOT / "tests"
    for path in sorted(tests.rglob("test_*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or "", *(alias.name for alias in node.names)]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            leaves = {name.rsplit(".", 1)[-1] for name in names}
            stray = {leaf for leaf in leaves if leaf.startswith("test_")}
            assert not stray, f"{path.relative_to(ROOT)} imports {sorted(stray)}"
