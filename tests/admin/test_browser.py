"""The admin pages in Debian's chromium against gunicorn and the demo county: a township admin
creates a partner (a double click sends it once) and a terminal (the secret shown once),
adds a benefit; a village clerk records a points batch and the admin approves it; the
dashboard changes; the second township's admin sees none of it. Screenshots at 1366x768
and 390x844 go to test-artifacts/admin/; the browser console stays free of errors."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser import chromium, repeat_submit_dropped, screenshot
from tests.live import LiveServer

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
PARTNER = "浏览器测试卫生院"
BENEFIT = "浏览器测试体检优惠"


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium() as browser:
        yield browser


class Session:
    """One logged-in user in their own browser context, collecting console problems."""

    def __init__(self, browser: Any, base: str, viewport: dict[str, int]) -> None:
        self.base = base
        self.context = browser.new_context(viewport=viewport, locale="zh-CN")
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.problems: list[str] = []
        self.page.on(
            "console",
            lambda msg: (
                self.problems.append(f"console {msg.type}: {msg.text}")
                if msg.type in ("error", "warning")
                else None
            ),
        )
        self.page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))

    def login(self, username: str, password: str) -> None:
        self.page.goto(self.base + "/admin/login")
        self.page.get_by_label("用户名").fill(username)
        self.page.get_by_label("密码").fill(password)
        self.page.get_by_role("button", name="登录").click()
        self.page.wait_for_url(re.compile(r".*/admin/$"))

    def go(self, path: str) -> Any:
        return self.page.goto(self.base + path)

    def shot(self, name: str) -> None:
        screenshot(self.page, f"{name}.png", "admin")

    def close(self) -> None:
        self.context.close()


def _admin(live: LiveServer, username: str) -> dict[str, Any]:
    return next(a for a in live.manifest["admins"] if a["username"] == username)


def _kpi(s: Session) -> int:
    s.go("/admin/")
    return int(s.page.locator('[data-kpi="points-issued"]').inner_text().replace(",", ""))


def test_township_admin_journey(live_server: LiveServer, browser: Any) -> None:
    base = live_server.url
    admin1, clerk1, admin2 = (
        _admin(live_server, name) for name in ("town1_admin", "town1_clerk", "town2_admin")
    )
    household = next(
        h for h in live_server.manifest["households"] if h["village"] == clerk1["region"]
    )

    s = Session(browser, base, DESKTOP)
    s.login(admin1["username"], admin1["password"])
    before = _kpi(s)
    assert s.page.locator("svg.chart").count() >= 3
    s.shot("01-dashboard-desktop")

    # A partner, with validation first.
    s.go("/admin/partners/new")
    assert repeat_submit_dropped(s.page.locator("main form").first)
    s.page.get_by_role("button", name="创建商户").click()
    assert s.page.get_by_text("请填写商户名称").is_visible()
    s.page.get_by_label("商户名称").fill(PARTNER)
    s.page.get_by_label("类别").select_option("hospital")
    s.page.get_by_label("地址").fill("镇上卫生路1号")
    s.page.get_by_label("联系电话").fill("13800002222")
    # An impatient double click sends the form once (admin/static/forms.js).
    s.page.get_by_role("button", name="创建商户").dblclick()
    s.page.wait_for_url(re.compile(r".*/admin/partners/\d+$"))
    partner_url = s.page.url
    assert s.page.get_by_role("heading", name=PARTNER).is_visible()
    s.go("/admin/partners")
    assert s.page.get_by_role("cell", name=PARTNER).count() == 1
    s.page.goto(partner_url)

    # A terminal: the secret appears once, on a page that says so.
    s.page.get_by_label("收银台名称").fill("挂号处")
    s.page.get_by_role("button", name="新增终端").click()
    assert s.page.get_by_text("密钥只显示这一次").is_visible()
    secret = s.page.get_by_test_id("terminal-secret").input_value()
    assert re.fullmatch(r"[0-9a-f]{64}", secret)
    s.shot("02-terminal-secret")
    s.page.get_by_role("link", name="我已保存,返回商户").click()
    assert secret not in s.page.content()

    # A benefit for this partner.
    s.page.get_by_role("link", name="添加权益").click()
    s.page.get_by_label("权益名称").fill(BENEFIT)
    s.page.get_by_label("权益类型").select_option("percent_discount")
    s.page.get_by_label("优惠比例(%)").fill("10")
    s.page.get_by_role("button", name="添加权益").click()
    s.page.wait_for_url(re.compile(r".*/admin/benefits$"))
    assert s.page.get_by_role("cell", name=BENEFIT).is_visible()
    benefit_edit = s.page.get_by_role("row", name=re.compile(BENEFIT)).get_by_role(
        "link", name="编辑"
    )
    benefit_url = base + benefit_edit.get_attribute("href")

    # The village clerk (maker) records and submits a batch.
    c = Session(browser, base, DESKTOP)
    c.login(clerk1["username"], clerk1["password"])
    c.go("/admin/points")
    c.page.get_by_role("button", name="新建批次").click()
    c.page.wait_for_url(re.compile(r".*/admin/points/batches/\d+$"))
    batch_url = c.page.url
    c.page.get_by_label("户编号").fill(household["ref"])
    c.page.get_by_label("积分规则").select_option("public_good")
    c.page.get_by_role("button", name="录入", exact=True).click()
    assert c.page.get_by_text(f"已录入:{household['ref']}").is_visible()
    c.page.get_by_role("button", name="提交审批").click()
    assert c.page.get_by_test_id("batch-status").inner_text() == "待审批"
    c.close()
    assert c.problems == []

    # The township admin (checker) approves after confirming.
    s.page.goto(batch_url)
    s.page.get_by_role("link", name="审批通过").click()
    s.page.get_by_label("我已核对,确认执行此操作").check()
    s.page.get_by_role("button", name="确认通过").click()
    assert s.page.get_by_test_id("batch-status").inner_text() == "已通过"
    assert _kpi(s) == before + 5
    s.shot("03-dashboard-after-approval")

    # Phone width: the same pages stay usable.
    phone = Session(browser, base, PHONE)
    phone.login(admin1["username"], admin1["password"])
    for path, name in (
        ("/admin/", "dashboard"),
        ("/admin/households", "households"),
        (partner_url.removeprefix(base), "partner"),
    ):
        phone.go(path)
        width = phone.page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"] + 1, (path, width)
        phone.shot(f"04-phone-{name}")
    phone.close()
    assert phone.problems == []

    # The second township's admin sees none of it.
    t = Session(browser, base, DESKTOP)
    t.login(admin2["username"], admin2["password"])
    t.go("/admin/partners")
    assert PARTNER not in t.page.content()
    t.go("/admin/benefits")
    assert BENEFIT not in t.page.content()
    for url in (partner_url, batch_url, benefit_url):
        resp = t.page.goto(url)
        assert resp is not None
        assert resp.status == 404, url
        assert t.page.get_by_text("您访问的页面不存在").is_visible()
    t.shot("05-other-township-404")
    t.close()
    # The only console messages allowed there are the 404 answers we asked for.
    assert [p for p in t.problems if "404" not in p] == []

    s.close()
    # The one HTTP error answer we asked for: the empty partner form (400 with its messages).
    assert [p for p in s.problems if "status of 400" not in p] == []
    assert "Traceback" not in live_server.log_text()
