"""The import rules of docs/architecture.md, checked on the source: imports point inward, neither
side imports the other, the mapper depends only on pure leaves, nothing imports `main.py`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tools.processes import ROOT

OURS = {
    "main",
    "ingestion",
    "delivery",
    "mapper",
    "stream",
    "saasquatch",
    "segment_api",
    "publisher",
    "common",
    "tools",
}
MAPPER_MAY_USE = {"saasquatch.calls", "common.outcomes", "common.text"}
# What each package may import of ours, besides itself.
ALLOWED = {
    "main": {"common", "ingestion", "delivery"},
    "ingestion": {"common", "publisher", "mapper", "saasquatch"},
    "delivery": {"common", "publisher", "mapper", "saasquatch", "stream", "segment_api"},
    "saasquatch": {"common"},
    # The forward side's pure mapper and its client, the mirrors of `mapper` and `saasquatch`.
    "stream": {"common"},  # (its __main__ reads input with common.documents)
    "segment_api": {"common"},
    "publisher": set(),
    "common": set(),
    "tools": {
        "common",
        "ingestion",
        "delivery",
        "mapper",
        "stream",
        "publisher",
        "saasquatch",
        "segment_api",
    },
    # The preview CLI is an entry point: it reads bodies the way ingest does.
    "mapper/__main__": {"ingestion", "common"},
}


def modules() -> list[Path]:
    found = [ROOT / "main.py"]
    for package in OURS - {"main"}:
        found += sorted((ROOT / package).rglob("*.py"))
    return found


def imported(path: Path) -> set[str]:
    """Dotted names of ours that `path` imports (relative imports resolved)."""
    return imported_by(path.read_text(), path.relative_to(ROOT).with_suffix("").parts[:-1])


def imported_by(source: str, package: tuple[str, ...]) -> set[str]:
    tree = ast.parse(source)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return {name for name in names if name.split(".")[0] in OURS}


def top(path: Path) -> str:
    return path.relative_to(ROOT).parts[0].removesuffix(".py")


def stray_imports(own: str, filename: str, names: set[str]) -> set[str]:
    """What a module of package `own` imports against the rules."""
    if own == "mapper" and filename != "__main__.py":
        outside = {name for name in names if name.split(".")[0] != "mapper"}
        return {name for name in outside if not name.startswith(tuple(MAPPER_MAY_USE))}
    allowed = ALLOWED["mapper/__main__" if own == "mapper" else own] | {own}
    return {name for name in names if name.split(".")[0] not in allowed}


@pytest.mark.parametrize("path", modules(), ids=lambda path: str(path.relative_to(ROOT)))
def test_imports_point_inward(path: Path) -> None:
    stray = stray_imports(top(path), path.name, imported(path))
    assert not stray, f"{path.relative_to(ROOT)} may not import {sorted(stray)}"


def test_the_checker_sees_a_stray_import() -> None:
    names = imported_by(
        "from delivery.execute import execute\nfrom . import body\n", ("ingestion",)
    )
    assert names == {"delivery.execute", "delivery.execute.execute", "ingestion", "ingestion.body"}
    assert stray_imports("ingestion", "handler.py", names) == {
        "delivery.execute",
        "delivery.execute.execute",
    }
    pure = imported_by("from saasquatch.client import Answer\n", ("mapper",))
    assert stray_imports("mapper", "track.py", pure) == pure
    assert stray_imports("tools", "x.py", imported_by("import main\n", ("tools",))) == {"main"}


def test_main_only_binds() -> None:
    lines = (ROOT / "main.py").read_text().splitlines()
    assert len(lines) < 80
    assert imported(ROOT / "main.py") <= {
        "common.request_log",
        "common.request_log.Handler",
        "common.settings",
        "common.settings.ConfigError",
        "ingestion",
        "ingestion.IngestSettings",
        "ingestion.create_handler",
        "delivery",
        "delivery.DeliverSettings",
        "delivery.create_handler",
        "ingestion.WebhookSettings",
        "ingestion.create_webhook_handler",
        "delivery.ForwardSettings",
        "delivery.create_forward_handler",
    }
