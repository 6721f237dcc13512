"""The farmer pages in Debian's chromium at a phone viewport, against gunicorn and the demo:
log in, see both balances, watch the code refresh, open history, benefits and the rating
page; screenshots go to test-artifacts/farmer/; no console errors."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser import chromium, repeat_submit_dropped, screenshot
from tests.live import LiveServer

pytestmark = pytest.mark.browser


@pytest.fixture
def phone(live_server: LiveServer) -> Any:
    with chromium() as browser:
        context = browser.new_context(
            viewport={"width": 360, "height": 740},
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            locale="zh-CN",
        )
        page = context.new_page()
        page.set_default_timeout(15_000)
        problems: list[str] = []
        page.on(
            "console",
            lambda msg: (
                problems.append(f"console {msg.type}: {msg.text}")
                if msg.type in ("error", "warning")
                else None
            ),
        )
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        page.on("requestfailed", lambda req: problems.append(f"request failed: {req.url}"))
        page.problems = problems  # type: ignore[attr-defined]
        try:
            yield page
        finally:
            context.close()


def shot(page: Any, name: str) -> None:
    screenshot(page, f"{name}.png", "farmer")


def test_farmer_journey(live_server: LiveServer, phone: Any) -> None:
    household = next(h for h in live_server.manifest["households"] if h["level"] in ("4", "5"))
    page = phone
    base = live_server.url
    page.goto(base + "/m/")
    assert page.url.startswith(base + "/m/login")
    shot(page, "01-login")
    page.fill("#phone", household["phone"])
    page.fill("#pin", household["pin"])
    page.click("button[type=submit]")
    page.wait_for_url(base + "/m/")
    assert page.inner_text("#level").endswith("星级")
    assert re.fullmatch(r"-?\d+\.\d\d", page.inner_text("#integrity"))
    assert re.fullmatch(r"-?\d+", page.inner_text("#points"))
    font_px = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
    assert font_px >= 18
    shot(page, "02-home")

    page.click("text=出示信用码")
    page.wait_for_url(base + "/m/code")
    first_src = page.get_attribute("#qr", "src")
    first_expiry = page.get_attribute("#code", "data-expires-at")
    assert first_src.startswith("data:image/png;base64,")
    shot(page, "03-code")
    refresh_in = int(page.get_attribute("#code", "data-refresh-in"))
    # The page fetches a new code before the old one expires.
    # (a selector, not wait_for_function: the page's CSP rightly forbids eval)
    page.wait_for_selector(
        '#code[data-refreshes="1"]', state="attached", timeout=(refresh_in + 15) * 1000
    )
    assert page.get_attribute("#code", "data-expires-at") > first_expiry
    assert page.get_attribute("#qr", "src") != first_src
    assert int(page.inner_text("#left")) > 0
    shot(page, "04-code-refreshed")

    page.goto(base + "/m/history")
    assert page.inner_text("h1") == "收支明细"
    shot(page, "05-history")

    page.goto(base + "/m/benefits")
    text = page.inner_text("main")
    assert "信用惠民清单" in text
    assert "住院免交押金" in text  # the demo's hospital line for 3 stars and up
    shot(page, "06-benefits")

    page.goto(base + "/m/benefits?lang=en")
    assert "Benefit list" in page.inner_text("h1")
    shot(page, "07-benefits-en")

    page.goto(base + "/m/rating?lang=zh_CN")
    assert page.inner_text("h1") == "我的评级与复议"
    shot(page, "08-rating")

    page.goto(base + "/m/pin")
    assert repeat_submit_dropped(page.locator("main form").first)  # a double tap sends once

    sizes = page.evaluate(
        "performance.getEntriesByType('resource').map(e => e.transferSize)"
        ".concat([performance.getEntriesByType('navigation')[0].transferSize])"
    )
    assert sum(sizes) < 50_000
    assert page.problems == []  # type: ignore[attr-defined]
