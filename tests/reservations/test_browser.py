"""Reserve → pickup in Debian's chromium (Playwright), against gunicorn and the demo county:
a household on a phone (390x844) reserves a towel at its township's supermarket and reads
the pickup code; the cashier (1024x768) types it at /cashier/pickup and hands the towel
over; the household then sees it collected. Screenshots in test-artifacts/; no console
errors. Skipped when /usr/bin/chromium is missing (never downloaded)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser import Console, chromium, screenshot
from tests.live import LiveServer

TOWNSHIP_ONE_VILLAGES = ("龙场村", "新寨村", "花甲村")

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as browser:
        yield browser


def _farmer_login(page: Any, url: str, household: dict[str, Any]) -> int:
    """Log in; returns the points available."""
    page.goto(url + "/m/login")
    page.fill("#phone", household["phone"])
    page.fill("#pin", household["pin"])
    page.press("#pin", "Enter")
    page.wait_for_url("**/m/")
    return int(page.inner_text("#points").strip())


def test_reserve_then_pick_up(browser: Any, live_server: LiveServer) -> None:
    url = live_server.url
    shop = next(
        p
        for p in live_server.manifest["partners"]
        if p["category"] == "supermarket" and p["township"] == "龙场镇"
    )
    already = {r["household_ref"] for r in live_server.manifest.get("reservations", [])}
    candidates = [
        h
        for h in live_server.manifest["households"]
        if h["level"] in ("3", "4", "5")
        and h["village"] in TOWNSHIP_ONE_VILLAGES
        and h["ref"] not in already
    ]
    phone = browser.new_context(
        viewport={"width": 390, "height": 844}, locale="zh-CN", is_mobile=True, has_touch=True
    )
    page = phone.new_page()
    farmer_console = Console(page)
    for household in candidates[:10]:
        if _farmer_login(page, url, household) >= 5:
            break
        phone.clear_cookies()
    else:
        pytest.fail("no demo household of the first township has 5 points")
    points_before = int(page.inner_text("#points").strip())

    page.click("#my-reservations")
    page.wait_for_url("**/m/reservations/")
    page.click("#new-reservation")
    page.click(f"a[href='/m/reservations/new?partner_id={shop['partner_id']}']")
    page.wait_for_selector("#reserve-form")
    page.fill("#qty-TOWEL", "1")
    screenshot(page, "reservation-new-390x844.png")
    page.click("#reserve")
    page.wait_for_selector("#pickup-code")
    shown = page.inner_text("#pickup-code").strip()
    assert re.fullmatch(r"\d{4} \d{4}", shown), shown
    assert page.is_visible("#pickup-qr")
    assert page.evaluate("document.querySelector('#pickup-qr').naturalWidth") > 0
    screenshot(page, "reservation-code-390x844.png")
    detail_url = page.url

    till = browser.new_context(viewport={"width": 1024, "height": 768}, locale="zh-CN")
    cashier_page = till.new_page()
    cashier_console = Console(cashier_page)
    cashier = next(
        a for a in live_server.manifest["admins"] if a["username"] == "cashier_t1_supermarket"
    )
    cashier_page.goto(url + "/cashier/login")
    cashier_page.fill("#username", cashier["username"])
    cashier_page.fill("#password", cashier["password"])
    cashier_page.press("#password", "Enter")
    cashier_page.wait_for_url("**/cashier/")
    cashier_page.click("a[href='/cashier/pickup']")
    cashier_page.wait_for_url("**/cashier/pickup")
    # The field is focused when the page has loaded, which may be just after the URL commits.
    cashier_page.wait_for_function("document.activeElement?.id === 'pickup-code-input'")
    cashier_page.keyboard.type(shown)  # as read out: with the space
    cashier_page.keyboard.press("Enter")
    cashier_page.wait_for_selector("#reservation")
    assert "毛巾" in cashier_page.inner_text("#reservation")
    screenshot(cashier_page, "cashier-pickup-1024x768.png")
    cashier_page.click("#confirm-pickup")
    cashier_page.wait_for_url("**/cashier/payments/pay_*")
    assert "已取货" in cashier_page.inner_text(".note-success")
    assert cashier_page.is_visible("#receipt")
    screenshot(cashier_page, "cashier-pickup-receipt-1024x768.png")

    page.goto(detail_url)
    assert page.inner_text("#status").strip() == "已取货"
    page.goto(url + "/m/")
    assert int(page.inner_text("#points").strip()) == points_before - 5
    screenshot(page, "reservation-collected-390x844.png")
    assert farmer_console.errors == []
    assert cashier_console.errors == []
    phone.close()
    till.close()
