"""A live Mawid server and a headless Debian Chromium driven by Playwright.

Only generic fixtures live here (the browser, axe-core, the artifacts
directory), so that nothing leaks into sibling suites; the citizen server
(`live_server`) comes from tests/citizen_fixtures.py. Chromium is the
distribution's /usr/bin/chromium (`apt-get install chromium`); `playwright
install` is never needed. axe-core comes from tests/browser/node_modules
(`npm ci --prefix tests/browser`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ARTIFACTS = HERE.parent / "artifacts"
AXE_JS = HERE / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


def missing(what: str) -> None:
    """CI installs Chromium and axe-core (.ci/run), so there a gap fails the
    run; on a laptop without them the rest of the suite still runs."""
    if os.environ.get("CI"):
        pytest.fail(what)
    pytest.skip(what)


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE_JS.exists():
        missing(f"{AXE_JS} missing: run `npm ci --prefix tests/browser`")
    return AXE_JS.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def chromium() -> str:
    found = shutil.which(CHROMIUM)
    if found is None:
        missing(f"{CHROMIUM} missing: apt-get install chromium")
    assert found is not None
    return found


@pytest.fixture(scope="session")
async def browser(chromium: str) -> AsyncIterator[object]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
