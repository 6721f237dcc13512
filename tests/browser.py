"""What every browser test shares: Debian's chromium (never a downloaded browser), its
headless flags, the screenshot folder and a console-error collector."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.live import ROOT

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "test-artifacts"


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A Playwright browser on Debian's chromium; the test is skipped where it is missing."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(
            f"{CHROMIUM} is missing: install Debian's chromium (scripts/setup.sh --browser); "
            "no browser is downloaded"
        )
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Console:
    """The console errors and uncaught page errors of one page."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))


def screenshot(page: Any, name: str, folder: str = "") -> None:
    target = ARTIFACTS / folder if folder else ARTIFACTS
    target.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target / name), full_page=True)


# Two submit events in a row, as a double click on a slow connection makes them: the first
# goes ahead, the second is dropped (synthetic events: nothing is actually sent).
_TWO_SUBMITS = """form => {
  const first = new SubmitEvent("submit", {bubbles: true, cancelable: true});
  const second = new SubmitEvent("submit", {bubbles: true, cancelable: true});
  form.dispatchEvent(first);
  form.dispatchEvent(second);
  delete form.dataset.sending;
  return [first.defaultPrevented, second.defaultPrevented];
}"""


def repeat_submit_dropped(form: Any) -> bool:
    """mall/static/forms.js at work on this form (a Playwright locator)."""
    return bool(form.evaluate(_TWO_SUBMITS) == [False, True])
