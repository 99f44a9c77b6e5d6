"""The docs say what the code does: the reasons table is the vocabulary, the configuration table
is every setting of the services that read it, and links between documents resolve."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from common.outcomes import Outcome, Reason, reasons_for
from common.settings import ServiceSettings
from stream.forward_settings import ForwardSettings
from stream.receive_settings import WebhookSettings
from subscription.deliver_settings import DeliverSettings
from subscription.ingest_settings import IngestSettings
from tools.processes import ROOT

DOCS = ROOT / "docs"


def table_rows(path: Path, header: str) -> list[list[str]]:
    """The cells of every row of the tables whose header row starts with `header`."""
    rows: list[list[str]] = []
    inside = False
    for line in path.read_text().splitlines():
        if line.startswith(header):
            inside = True
            continue
        if inside and line.startswith("|"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            if not set(cells[0]) <= {"-", ":"}:
                rows.append(cells)
        else:
            inside = False
    return rows


def names_in(cell: str) -> list[str]:
    return re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", cell)


def test_the_reasons_table_is_the_vocabulary_in_its_order() -> None:
    rows = table_rows(DOCS / "operations" / "reasons.md", "| reason | outcome |")
    documented = [(names_in(reason)[0], outcome) for reason, outcome, *_ in rows]
    in_code = [
        (str(reason), str(outcome)) for outcome in Outcome for reason in reasons_for(outcome)
    ]
    assert documented == in_code
    assert {reason for reason, _ in documented} == {str(reason) for reason in Reason}


def test_every_reason_belongs_to_exactly_one_outcome() -> None:
    grouped = [reason for outcome in Outcome for reason in reasons_for(outcome)]
    assert sorted(grouped) == sorted(Reason)
    for reason in Reason:
        assert reason in reasons_for(reason.outcome)


def test_the_configuration_table_lists_every_setting_with_its_side() -> None:
    rows = table_rows(DOCS / "configuration.md", "| variable | used by |")
    documented = {name: side for cell, side, *_ in rows for name in names_in(cell)}
    services = {
        "ingest": IngestSettings,
        "deliver": DeliverSettings,
        "saasquatch_webhook": WebhookSettings,
        "forward": ForwardSettings,
    }
    expected = {}
    for name in set().union(*(settings.model_fields for settings in services.values())):
        readers = [
            service for service, settings in services.items() if name in settings.model_fields
        ]
        expected[name] = "all" if name in ServiceSettings.model_fields else ", ".join(readers)
    assert documented == expected


@pytest.mark.parametrize(
    "document",
    [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))],
    ids=lambda path: str(path.relative_to(ROOT)),
)
def test_links_between_documents_resolve(document: Path) -> None:
    text = document.read_text()
    for target, anchor in re.findall(r"\]\((?!https?://)([^)#\s]*)(?:#([^)\s]*))?\)", text):
        linked = (document.parent / target).resolve() if target else document
        assert linked.exists(), f"{document.name} links to missing {target}"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked), f"{document.name}: no #{anchor} in {linked.name}"


def anchors(document: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    found = set()
    for line in document.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found
