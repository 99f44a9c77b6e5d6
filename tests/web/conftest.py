"""The browser tests' fixtures: one headless Chromium (Debian's) for the session, driven by
Playwright, in its own process group (Playwright starts it so and stops the group at the end); the
local site and Segment stand-in for the session; a fresh browser context for each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

from .site import CHROMIUM, CHROMIUM_ARGS, Browsing, SegmentApi, Site


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: Debian's chromium package (make test installs it)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def site() -> Iterator[Site]:
    with Site() as running:
        yield running


@pytest.fixture(scope="session")
def segment_api_server() -> Iterator[SegmentApi]:
    with SegmentApi() as running:
        yield running


@pytest.fixture
def browsing(chromium: Browser, site: Site, segment_api_server: SegmentApi) -> Iterator[Browsing]:
    """A fresh context (no cookies yet) on the site, the Segment stand-in emptied."""
    segment_api_server.reset()
    context = chromium.new_context()
    try:
        yield Browsing(context, site, segment_api_server)
    finally:
        context.close()
