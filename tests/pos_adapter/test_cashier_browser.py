"""The cashier web terminal in Debian's chromium (Playwright), by keyboard alone, against a
real gunicorn with the demo county: log in, scan a card code as a scanner gun types it, see
the holder and level, enter an amount, see the live quote, enter the PIN, confirm, see the
receipt, refund part of it, see the day's list and the statement. Screenshots go to
test-artifacts/ at 1024x768 (a till's screen) and 390x844 (a phone)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser import Console, chromium, screenshot
from tests.live import LiveServer

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as browser:
        yield browser


def _cashier(live_server: LiveServer) -> dict[str, Any]:
    return next(
        a for a in live_server.manifest["admins"] if a["username"] == "cashier_t1_supermarket"
    )


def _household(live_server: LiveServer) -> dict[str, Any]:
    return next(h for h in live_server.manifest["households"] if h.get("card_code") and h["level"])


def _expect(locator: Any) -> Any:
    # not page.wait_for_function: its string predicates are eval'd, which our CSP forbids
    from playwright.sync_api import expect

    return expect(locator)


def _tab_to(page: Any, selector: str, limit: int = 40) -> None:
    """Press Tab until `selector` has the focus, as a keyboard user would."""
    for _ in range(limit):
        if page.evaluate("(s) => document.activeElement === document.querySelector(s)", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


def _login(page: Any, live_server: LiveServer) -> None:
    cashier = _cashier(live_server)
    page.goto(live_server.url + "/cashier/login")
    _expect(page.locator("#username")).to_be_focused()  # waits: autofocus lands after load
    page.keyboard.type(cashier["username"])
    page.keyboard.press("Tab")
    page.keyboard.type(cashier["password"])
    page.keyboard.press("Enter")
    page.wait_for_url("**/cashier/")


def test_a_sale_by_keyboard(browser: Any, live_server: LiveServer) -> None:
    household = _household(live_server)
    context = browser.new_context(viewport={"width": 1024, "height": 768}, locale="zh-CN")
    page = context.new_page()
    console = Console(page)
    _login(page, live_server)
    _expect(page.locator("#code-input")).to_be_focused()
    screenshot(page, "cashier-till-1024x768.png")

    # a scanner gun types the card's code and presses Enter
    page.keyboard.type(household["card_code"])
    page.keyboard.press("Enter")
    page.wait_for_selector("#holder:not([hidden])")
    assert page.inner_text("#holder-level").strip()
    assert page.inner_text("#holder-name").strip()
    assert page.is_visible("#pin-field")
    _expect(page.locator("#amount")).to_be_focused()

    page.keyboard.type("12.3")
    _expect(page.locator("#q-amount")).to_have_text("12.30")
    due = page.inner_text("#q-due")
    discount = page.inner_text("#q-discount")
    assert f"{float(due) + float(discount):.2f}" == "12.30"
    _tab_to(page, "#pin")
    page.keyboard.type(household["pin"])
    screenshot(page, "cashier-quote-1024x768.png")
    page.keyboard.press("Enter")
    page.wait_for_url("**/cashier/payments/pay_*")
    assert page.is_visible("#receipt")
    assert due in page.inner_text("#receipt-due")
    _expect(page.locator("#next-sale")).to_be_focused()
    receipt_url = page.url
    screenshot(page, "cashier-receipt-1024x768.png")

    # refund part of it
    _tab_to(page, "#refund-amount")
    page.keyboard.type("5")
    page.keyboard.press("Enter")
    page.wait_for_selector(".note-success")
    assert "5.00" in page.inner_text(".note-success")
    assert page.is_visible("#refunds")

    # the day's list and the statement, through the navigation
    _tab_to(page, "a[href='/cashier/day']")
    page.keyboard.press("Enter")
    page.wait_for_url("**/cashier/day")
    assert receipt_url.rsplit("/", 1)[1] in page.content()
    screenshot(page, "cashier-day-1024x768.png")
    _tab_to(page, "a[href='/cashier/statement']")
    page.keyboard.press("Enter")
    page.wait_for_url("**/cashier/statement")
    assert page.inner_text("#net-payable").strip()
    screenshot(page, "cashier-statement-1024x768.png")

    # back to the till: Esc clears, the code field has the focus again
    page.goto(live_server.url + "/cashier/")
    page.keyboard.type(household["card_code"])
    page.keyboard.press("Enter")
    page.wait_for_selector("#holder:not([hidden])")
    page.keyboard.press("Escape")
    assert page.is_hidden("#holder")
    _expect(page.locator("#code-input")).to_be_focused()
    assert console.errors == []
    context.close()


def test_the_till_on_a_phone(browser: Any, live_server: LiveServer) -> None:
    household = _household(live_server)
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, locale="zh-CN"
    )
    page = context.new_page()
    console = Console(page)
    _login(page, live_server)
    page.keyboard.type(household["card_code"])
    page.keyboard.press("Enter")
    page.wait_for_selector("#holder:not([hidden])")
    page.keyboard.type("8")
    _expect(page.locator("#q-amount")).to_have_text("8.00")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "the till scrolls sideways on a phone"
    screenshot(page, "cashier-till-390x844.png")
    page.goto(live_server.url + "/cashier/statement?lang=en")
    assert "Daily statement" in page.content()
    screenshot(page, "cashier-statement-en-390x844.png")
    assert console.errors == []
    context.close()
