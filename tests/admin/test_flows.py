"""The admin pages end to end through the Flask test client: forms validate with Chinese
messages, services do the work, every change leaves one audit entry."""

from __future__ import annotations

import csv
import io
import re

import pytest
from flask.testing import FlaskClient
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mall.audit.models import AuditEntry
from mall.benefits.models import Benefit
from mall.partners.models import Partner, Terminal
from mall.partners.services import terminal_secret
from mall.points.models import PointBatch
from mall.subjects.models import CreditSubject
from mall.users.models import User
from tests.admin.pages_helpers import World, build_world, login_as, post, text


@pytest.fixture
def w(session: Session) -> World:
    return build_world(session)


def audits(session: Session, action: str) -> list[AuditEntry]:
    return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def xlsx_bytes(rows: list[list[object]]) -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    for row in rows:
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# ---------------------------------------------------------------- partners and terminals


def test_partner_form_validates_in_chinese(client: FlaskClient, w: World) -> None:
    login_as(client, w.town_admin)
    resp = post(
        client,
        "/admin/partners/new",
        {"township_id": w.town.id, "name": "", "category": "supermarket", "contact_phone": "123"},
    )
    assert resp.status_code == 400
    html = text(resp)
    assert "请填写商户名称" in html
    assert "请填写11位手机号码" in html
    assert 'aria-invalid="true"' in html


def test_partner_form_refuses_a_name_taken_in_the_township(
    client: FlaskClient, w: World, session: Session
) -> None:
    login_as(client, w.town_admin)
    taken = w.partner.name
    resp = post(
        client,
        "/admin/partners/new",
        {"township_id": w.town.id, "name": taken, "category": "bank"},
    )
    assert resp.status_code == 400
    assert "本乡镇已有同名商户" in text(resp)
    other = post(
        client,
        "/admin/partners/new",
        {"township_id": w.town.id, "name": "龙场农商银行", "category": "bank"},
    )
    assert other.status_code == 302
    bank = session.scalars(select(Partner).where(Partner.name == "龙场农商银行")).one()
    resp = post(
        client,
        f"/admin/partners/{bank.id}/edit",
        {"township_id": w.town.id, "name": taken, "category": "bank"},
    )
    assert resp.status_code == 400
    assert "本乡镇已有同名商户" in text(resp)
    session.expire_all()
    assert session.get_one(Partner, bank.id).name == "龙场农商银行"
    assert len(audits(session, "partner.update")) == 0


def test_partner_terminal_secret_shown_once(
    client: FlaskClient, w: World, session: Session
) -> None:
    login_as(client, w.town_admin)
    resp = post(
        client,
        "/admin/partners/new",
        {
            "township_id": w.town.id,
            "name": "龙场镇卫生院",
            "category": "hospital",
            "address": "街上1号",
            "contact_name": "刘医生",
            "contact_phone": "13800001111",
            "accepts_integrity": "y",
            "settlement_payee": "龙场镇卫生院",
            "settlement_bank": "农商银行",
            "settlement_account": "6228480012345678",
        },
    )
    assert resp.status_code == 302
    partner = session.scalars(select(Partner).where(Partner.name == "龙场镇卫生院")).one()
    assert partner.contact_phone_masked == "138****1111"
    assert partner.settlement["account_masked"] == "6228********5678"
    assert len(audits(session, "partner.create")) == 1

    resp = post(client, f"/admin/partners/{partner.id}/terminals", {"name": "挂号处"})
    assert resp.status_code == 200
    html = text(resp)
    terminal = session.scalars(select(Terminal).where(Terminal.partner_id == partner.id)).one()
    secret = terminal_secret(terminal)
    assert secret in html
    assert "密钥只显示这一次" in html
    assert resp.headers["Cache-Control"] == "no-store"
    assert secret not in text(client.get(f"/admin/partners/{partner.id}"))
    assert len(audits(session, "terminal.create")) == 1

    # Rotation and disabling ask for confirmation first.
    path = f"/admin/terminals/{terminal.id}/rotate"
    assert "确认执行此操作" in text(client.get(path))
    assert post(client, path, {}).status_code == 400
    resp = post(client, path, {"confirm": "y"})
    new_secret = terminal_secret(terminal)
    assert new_secret != secret
    assert new_secret in text(resp)
    assert (
        post(client, f"/admin/terminals/{terminal.id}/disable", {"confirm": "y"}).status_code == 302
    )
    session.refresh(terminal)
    assert terminal.active is False
    assert len(audits(session, "terminal.disable")) == 1


def test_cashier_account_for_a_partner(client: FlaskClient, w: World, session: Session) -> None:
    login_as(client, w.town_admin)
    path = f"/admin/partners/{w.partner.id}/cashiers/new"
    resp = post(
        client, path, {"username": "cashier-li", "display_name": "李收银", "password": "short"}
    )
    assert resp.status_code == 400
    assert "密码须为10至128个字符" in text(resp)
    resp = post(
        client,
        path,
        {"username": "cashier-li", "display_name": "李收银", "password": "long-enough-pw"},
    )
    assert resp.status_code == 302
    user = session.scalars(select(User).where(User.username == "cashier-li")).one()
    assert user.role == "cashier"
    assert user.partner_id == w.partner.id
    assert len(audits(session, "user.create")) == 1


def test_goods_and_stock(client: FlaskClient, w: World, session: Session) -> None:
    login_as(client, w.town_admin)
    path = f"/admin/partners/{w.partner.id}/goods/new"
    data = {
        "sku": "towel-1",
        "name": "毛巾",
        "points_price": "30",
        "settlement_yuan": "8.50",
        "stock": "20",
        "active": "y",
    }
    assert post(client, path, data).status_code == 302
    resp = post(client, path, data)
    assert resp.status_code == 400
    assert "该商户已有此商品编码" in text(resp)
    detail = text(client.get(f"/admin/partners/{w.partner.id}"))
    assert "毛巾" in detail
    assert "8.50" in detail
    assert len(audits(session, "goods.create")) == 1


# ---------------------------------------------------------------- benefits


def test_benefit_create_validate_and_deactivate(
    client: FlaskClient, w: World, session: Session
) -> None:
    login_as(client, w.town_admin)
    base = {
        "title_zh": "体检八折",
        "scope": "category",
        "partner_category": "hospital",
        "kind": "percent_discount",
        "min_level_rank": "3",
        "funded_by": "partner",
    }
    resp = post(client, "/admin/benefits/new", base)
    assert resp.status_code == 400
    assert "按比例优惠须填写优惠比例" in text(resp)
    assert post(client, "/admin/benefits/new", {**base, "percent": "20"}).status_code == 302
    benefit = session.scalars(select(Benefit).where(Benefit.title_zh == "体检八折")).one()
    assert benefit.percent_bp == 2000
    assert benefit.township_id == w.town.id
    assert "体检八折" in text(client.get("/admin/benefits"))
    assert (
        post(client, f"/admin/benefits/{benefit.id}/deactivate", {"confirm": "y"}).status_code
        == 302
    )
    session.refresh(benefit)
    assert benefit.active is False
    # The other township's admin does not see it.
    login_as(client, w.town2_admin)
    assert "体检八折" not in text(client.get("/admin/benefits"))
    assert client.get(f"/admin/benefits/{benefit.id}/edit").status_code == 404


def test_a_free_item_benefit_needs_its_cap(client: FlaskClient, w: World, session: Session) -> None:
    """What a free item is worth comes from the list (issue 19): the form asks for the cap."""
    login_as(client, w.town_admin)
    base = {
        "title_zh": "免费体检",
        "scope": "category",
        "partner_category": "hospital",
        "kind": "free_item",
        "min_level_rank": "4",
        "limit_per_year": "1",
        "funded_by": "township_fund",
    }
    resp = post(client, "/admin/benefits/new", base)
    assert resp.status_code == 400
    assert "免费项目须填写优惠上限" in text(resp)
    assert post(client, "/admin/benefits/new", {**base, "cap_yuan": "300"}).status_code == 302
    benefit = session.scalars(select(Benefit).where(Benefit.title_zh == "免费体检")).one()
    assert (benefit.kind, benefit.cap_fen) == ("free_item", 30000)
    assert "免费项目,最多300.00元" in text(client.get("/admin/benefits"))


# ---------------------------------------------------------------- points, maker-checker


def test_points_batch_maker_checker(client: FlaskClient, w: World, session: Session) -> None:
    h = w.households[0]
    login_as(client, w.clerk)
    assert (
        post(client, "/admin/points/batches", {"region_id": w.c.villages[0].id}).status_code == 302
    )
    batch = session.scalars(select(PointBatch)).one()
    path = f"/admin/points/batches/{batch.id}/events"
    today = text(client.get(f"/admin/points/batches/{batch.id}"))
    day = re.search(r'name="occurred_on"[^>]*value="([0-9-]+)"', today)
    assert day
    resp = post(
        client,
        path,
        {"household_ref": "nope", "rule_code": "volunteer", "occurred_on": day.group(1)},
    )
    assert resp.status_code == 400
    assert "户编号不存在或不在本辖区" in text(resp)
    resp = post(
        client,
        path,
        {
            "household_ref": h.ref,
            "rule_code": "volunteer",
            "occurred_on": day.group(1),
            "note": "扫雪",
        },
    )
    assert resp.status_code == 302
    assert post(client, f"/admin/points/batches/{batch.id}/submit").status_code == 302
    session.refresh(batch)
    assert batch.status == "submitted"
    # The clerk is no checker.
    assert client.get(f"/admin/points/batches/{batch.id}/approve").status_code == 403
    # The township admin approves, after ticking the confirmation.
    login_as(client, w.town_admin)
    assert "审批通过" in text(client.get(f"/admin/points/batches/{batch.id}"))
    assert (
        post(client, f"/admin/points/batches/{batch.id}/approve", {"note": "ok"}).status_code == 400
    )
    assert (
        post(
            client, f"/admin/points/batches/{batch.id}/approve", {"note": "ok", "confirm": "y"}
        ).status_code
        == 302
    )
    session.refresh(batch)
    assert batch.status == "approved"
    assert batch.points_issued == 5
    detail = text(client.get(f"/admin/households/{h.ref}"))
    assert 'data-testid="balance-household_points">5<' in detail
    assert len(audits(session, "points.batch.approve")) == 1
    assert "5" in text(client.get("/admin/"))


def test_maker_cannot_approve_own_batch(client: FlaskClient, w: World, session: Session) -> None:
    login_as(client, w.town_admin)
    post(client, "/admin/points/batches", {"region_id": w.town.id})
    batch = session.scalars(select(PointBatch)).one()
    post(
        client,
        f"/admin/points/batches/{batch.id}/events",
        {
            "household_ref": w.households[0].ref,
            "rule_code": "volunteer",
            "occurred_on": batch.created_at.date().isoformat(),
        },
    )
    post(client, f"/admin/points/batches/{batch.id}/submit")
    assert "须由其他管理员审批" in text(client.get(f"/admin/points/batches/{batch.id}"))
    resp = post(client, f"/admin/points/batches/{batch.id}/approve", {"confirm": "y"})
    assert resp.status_code == 302
    assert "不能审批自己录入的积分批次" in text(client.get(resp.location))
    session.refresh(batch)
    assert batch.status == "submitted"


def test_points_import_reports_rows_and_applies_nothing(
    client: FlaskClient, w: World, session: Session
) -> None:
    login_as(client, w.town_admin)
    good = w.households[0].ref
    day = w.households[0].created_at.date().isoformat()
    content = xlsx_bytes(
        [
            ["户编号", "规则代码", "日期"],
            [good, "volunteer", day],
            ["nope", "volunteer", day],
            [good, "missing", day],
        ]
    )
    resp = client.post(
        "/admin/points/import",
        data={
            "csrf_token": _token(client),
            "region_id": w.town.id,
            "file": (io.BytesIO(content), "events.xlsx"),
        },
        content_type="multipart/form-data",
    )
    assert resp.status_code == 422
    html = text(resp)
    assert "没有导入任何数据" in html
    assert ">3<" in html
    assert ">4<" in html
    assert session.scalar(select(func.sum(PointBatch.events))) == 0
    resp = client.post(
        "/admin/points/import",
        data={
            "csrf_token": _token(client),
            "region_id": w.town.id,
            "apply_good_rows": "y",
            "file": (io.BytesIO(content), "events.xlsx"),
        },
        content_type="multipart/form-data",
    )
    assert resp.status_code == 302
    assert session.scalar(select(func.sum(PointBatch.events))) == 1


def _token(client: FlaskClient) -> str:
    from tests.admin.pages_helpers import csrf

    return csrf(client)


# ---------------------------------------------------------------- households


def test_enrol_validates_and_audits(client: FlaskClient, w: World, session: Session) -> None:
    login_as(client, w.clerk)
    resp = post(
        client,
        "/admin/households/new",
        {
            "village_id": w.c.villages[0].id,
            "head_name": "陈立",
            "id_number": "123",
            "phone": "1380000",
        },
    )
    assert resp.status_code == 400
    assert "身份证号须为18位" in text(resp)
    assert "请填写11位手机号码" in text(resp)
    resp = post(
        client,
        "/admin/households/new",
        {
            "village_id": w.c.villages[0].id,
            "head_name": "陈立",
            "id_number": "34082319800101123X",
            "phone": "13912345678",
            "members": "陈小立 儿子",
        },
    )
    assert resp.status_code == 302
    subject = session.scalars(
        select(CreditSubject).where(CreditSubject.phone_masked == "139****5678")
    ).one()
    html = text(client.get(f"/admin/households/{subject.ref}"))
    assert "陈*" in html
    assert "3408**********123X" in html
    assert "13912345678" not in html
    assert len(audits(session, "household.create")) == 1


def test_status_change_needs_reason_and_confirmation(
    client: FlaskClient, w: World, session: Session
) -> None:
    h = w.households[0]
    login_as(client, w.town_admin)
    path = f"/admin/households/{h.ref}/status"
    resp = post(client, path, {"status": "frozen", "reason": ""})
    assert resp.status_code == 400
    assert "请填写原因" in text(resp)
    assert "请勾选确认" in text(resp)
    assert (
        post(client, path, {"status": "frozen", "reason": "拖欠", "confirm": "y"}).status_code
        == 302
    )
    session.refresh(h)
    assert h.status == "frozen"
    assert audits(session, "household.status.frozen")[0].note == "拖欠"


def test_reveal_pin_and_card(client: FlaskClient, w: World, session: Session) -> None:
    h = w.households[0]
    login_as(client, w.town_admin)
    resp = post(
        client, f"/admin/households/{h.ref}/reveal", {"field": "name", "reason": "核实身份"}
    )
    assert resp.status_code == 200
    assert "张建华" in text(resp)
    assert "只显示这一次" in text(resp)
    assert resp.headers["Cache-Control"] == "no-store"
    assert len(audits(session, "household.reveal")) == 1
    resp = post(client, f"/admin/households/{h.ref}/pin", {"new_pin": "123456", "confirm": "y"})
    assert resp.status_code == 400
    assert "密码须为6位数字" in text(resp)
    assert (
        post(
            client, f"/admin/households/{h.ref}/pin", {"new_pin": "852046", "confirm": "y"}
        ).status_code
        == 302
    )
    entry = audits(session, "household.pin_reset")[0]
    assert entry.after is not None
    assert entry.after["pin_set"] is True
    assert "852046" not in str(entry.after)
    assert post(client, f"/admin/households/{h.ref}/card", {"confirm": "y"}).status_code == 302
    assert post(client, f"/admin/households/{h.ref}/card", {"confirm": "y"}).status_code == 302
    issued = audits(session, "household.card_issue")
    assert len(issued) == 2
    assert issued[1].before == {"serial": issued[0].after["serial"]}
    # Clerks may not reveal.
    login_as(client, w.clerk)
    assert client.get(f"/admin/households/{h.ref}/reveal").status_code == 403


def test_card_sheet_pdf(client: FlaskClient, w: World) -> None:
    login_as(client, w.town_admin)
    post(client, f"/admin/households/{w.households[0].ref}/card", {"confirm": "y"})
    resp = client.get(f"/admin/cards/{w.c.villages[0].id}.pdf")
    assert resp.status_code == 200
    assert resp.data.startswith(b"%PDF")
    png = client.get(f"/admin/cards/{w.c.villages[0].id}.png")
    assert png.status_code == 200
    assert png.data.startswith(b"\x89PNG")


def test_household_import_row_errors_then_good_rows(
    client: FlaskClient, w: World, session: Session
) -> None:
    login_as(client, w.town_admin)
    village = w.c.villages[0].name
    content = xlsx_bytes(
        [
            ["村", "户主姓名", "身份证号", "手机号", "家庭成员"],
            [village, "周一", "340823199001011234", "13700000001", "周二 儿子"],
            ["不存在村", "周三", None, None, None],
            [village, "", None, "13700000002", None],
            [village, "周四", "12345", None, None],
        ]
    )
    count = session.scalar(select(func.count()).select_from(CreditSubject))

    def upload(extra: dict[str, str]) -> str:
        resp = client.post(
            "/admin/households/import",
            data={"csrf_token": _token(client), **extra, "file": (io.BytesIO(content), "h.xlsx")},
            content_type="multipart/form-data",
        )
        return text(resp)

    html = upload({})
    for row in ("3", "4", "5"):
        assert f'<td class="num">{row}</td>' in html
    assert "村不存在或不在本辖区" in html
    assert "户主姓名须为1至30个字" in html
    assert "身份证号须为18位" in html
    assert session.scalar(select(func.count()).select_from(CreditSubject)) == count
    assert audits(session, "household.create") == []
    html = upload({"apply_good_rows": "y"})
    assert "已导入正确的 1 行" in html
    assert session.scalar(select(func.count()).select_from(CreditSubject)) == count + 1


def test_household_export_is_masked_with_chinese_headers(client: FlaskClient, w: World) -> None:
    login_as(client, w.town_admin)
    resp = client.get("/admin/households?format=xlsx")
    ws = load_workbook(io.BytesIO(resp.data)).active
    assert ws is not None
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][:3] == ("户编号", "村", "户主(脱敏)")
    assert len(rows) == 4  # header + the township's three households
    names = {r[2] for r in rows[1:]}
    assert names == {"张*华", "李*英", "王*明"}
    csv_resp = client.get(f"/admin/households?format=csv&village={w.c.villages[1].id}")
    lines = list(csv.reader(io.StringIO(csv_resp.get_data(as_text=True).lstrip("\ufeff"))))
    assert lines[0][0] == "户编号"
    assert len(lines) == 2


# ---------------------------------------------------------------- audit, users, regions, ratings


def test_audit_log_filters_and_csv(client: FlaskClient, w: World, session: Session) -> None:
    login_as(client, w.town_admin)
    post(
        client,
        f"/admin/households/{w.households[0].ref}/status",
        {"status": "frozen", "reason": "测试", "confirm": "y"},
    )
    page = text(client.get("/admin/audit?action=household.status.frozen"))
    assert "household.status.frozen" in page
    assert "household.status.frozen" not in text(client.get("/admin/audit?action=partner.create"))
    assert "household.status.frozen" in text(
        client.get(f"/admin/audit?actor={w.town_admin.username}")
    )
    resp = client.get("/admin/audit?format=csv&action=household.status.frozen")
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][:4] == ["编号", "时间", "操作人", "操作"]
    assert len(rows) == 2
    login_as(client, w.town2_admin)
    assert "household.status.frozen" not in text(client.get("/admin/audit"))


def test_users_create_and_deactivate(client: FlaskClient, w: World, session: Session) -> None:
    login_as(client, w.town_admin)
    resp = post(
        client,
        "/admin/users/new",
        {
            "username": "clerk-new",
            "password": "long-enough-pw",
            "role": "village_clerk",
            "region_id": w.town.id,
            "partner_id": 0,
        },
    )
    assert resp.status_code == 400
    assert "该角色须属于一个村" in text(resp)
    resp = post(
        client,
        "/admin/users/new",
        {
            "username": "clerk-new",
            "password": "long-enough-pw",
            "role": "village_clerk",
            "region_id": w.c.villages[0].id,
            "partner_id": 0,
        },
    )
    assert resp.status_code == 302
    user = session.scalars(select(User).where(User.username == "clerk-new")).one()
    # A township admin cannot create a county admin.
    resp = post(
        client,
        "/admin/users/new",
        {
            "username": "boss",
            "password": "long-enough-pw",
            "role": "county_admin",
            "region_id": w.town.id,
            "partner_id": 0,
        },
    )
    assert resp.status_code == 400  # not among the role choices
    assert post(client, f"/admin/users/{user.id}/deactivate", {"confirm": "y"}).status_code == 302
    session.refresh(user)
    assert user.active is False
    assert len(audits(session, "user.deactivate")) == 1
    assert (
        post(client, f"/admin/users/{w.town_admin.id}/deactivate", {"confirm": "y"}).status_code
        == 403
    )


def test_region_settings(client: FlaskClient, w: World, session: Session) -> None:
    login_as(client, w.town_admin)
    path = f"/admin/regions/{w.town.id}/settings"
    resp = post(client, path, {"notice_days": "0"})
    assert resp.status_code == 400
    assert "须在1至60之间" in text(resp)
    resp = post(client, path, {"weight_civility": "30", "weight_visit": "40"})
    assert resp.status_code == 400
    assert "合计为100" in text(resp)
    assert (
        post(client, path, {"notice_days": "10", "offline_floor_limit_yuan": "80"}).status_code
        == 302
    )
    session.refresh(w.town)
    assert w.town.settings["notice_days"] == 10
    assert w.town.settings["offline_floor_limit_fen"] == 8000
    assert len(audits(session, "region.settings")) == 1
    # Only the county admin edits the county.
    assert client.get(f"/admin/regions/{w.c.county.id}/settings").status_code == 404


def test_rating_score_notice_appeal_answer(client: FlaskClient, w: World, session: Session) -> None:
    h = w.households[0]
    login_as(client, w.clerk)
    resp = post(client, f"/admin/households/{h.ref}/rate", {"positive": "志愿服务 x"})
    assert resp.status_code == 400
    assert "分值为非负整数" in text(resp)
    resp = post(
        client,
        f"/admin/households/{h.ref}/rate",
        {
            "positive": "志愿服务 10\n孝老爱亲 5",
            "negative": "乱堆乱放 2",
            "reviewers": "张三\n张四 回避",
            "visit_score": "90",
            "points_score": "80",
        },
    )
    assert resp.status_code == 302
    rating_path = resp.location
    page = text(client.get(rating_path))
    assert "评议得分 93" in page
    assert "张四" in page
    rating_id = int(rating_path.rsplit("/", 1)[1])
    assert post(client, f"/admin/ratings/{rating_id}/notice").status_code == 302
    assert h.ref in text(client.get(f"/admin/ratings?village={w.c.villages[0].id}"))
    assert (
        post(client, f"/admin/ratings/{rating_id}/appeal", {"grounds": "分数偏低"}).status_code
        == 302
    )
    appeals = text(client.get("/admin/ratings/appeals?status=open"))
    match = re.search(r"/admin/appeals/(\d+)/answer", appeals)
    assert match
    assert (
        post(
            client, f"/admin/appeals/{match.group(1)}/answer", {"answer": "经复核维持"}
        ).status_code
        == 302
    )
    assert "维持原评" in text(client.get(rating_path))
    assert {e.action for e in session.scalars(select(AuditEntry))} >= {
        "rating.review",
        "rating.notice",
        "rating.appeal",
        "rating.appeal.upheld",
    }
