"""Settlement pages: close a day, mark it paid, reopen it, upload a partner's file; scoped,
CSRF-protected, audited by the settlement services."""

from __future__ import annotations

import io
from datetime import timedelta

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from mall.audit.models import AuditEntry
from mall.clock import business_date
from tests.admin.pages_helpers import World, build_world, login_as, post, text


def _actions(session: Session) -> list[str]:
    return list(
        session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.action.like("settlement.%"))
            .order_by(AuditEntry.id)
        )
    )


def test_close_pay_reopen_and_reconcile(client: FlaskClient, session: Session) -> None:
    w: World = build_world(session)
    login_as(client, w.town_admin)
    day = (business_date() - timedelta(days=1)).isoformat()
    page = f"/admin/settlement/{w.partner.id}/{day}"
    assert "未关账" in text(client.get(page))

    refused = post(client, page + "/close", {})  # the confirmation box unticked
    assert refused.status_code == 400
    assert post(client, page + "/close", {"confirm": "y"}).status_code == 302
    html = text(client.get(page))
    assert "已关账" in html
    assert "标记已付款" in html

    paid = post(client, page + "/paid", {"reference": "BANK-001", "paid_on": day, "confirm": "y"})
    assert paid.status_code == 302
    assert "BANK-001" in text(client.get(page))

    post(client, page + "/reopen", {"reason": "商户补交小票", "confirm": "y"})
    html = text(client.get(page))
    assert "未关账" in html
    assert "第 2 版" in html

    upload = io.BytesIO("支付单号,金额(分)\npay_unknown,1200\n".encode())
    done = post(
        client,
        page + "/reconcile",
        {"file": (upload, "partner.csv")},
        content_type="multipart/form-data",
    )
    assert done.status_code == 302
    assert "对账记录" in text(client.get(page))
    assert _actions(session) == [
        "settlement.close",
        "settlement.pay",
        "settlement.reopen",
        "settlement.reconcile",
    ]


def test_scope_roles_and_csrf(client: FlaskClient, session: Session) -> None:
    w: World = build_world(session)
    day = (business_date() - timedelta(days=1)).isoformat()
    page = f"/admin/settlement/{w.partner.id}/{day}"
    login_as(client, w.town2_admin)
    assert client.get(page).status_code == 404
    assert post(client, page + "/close", {"confirm": "y"}).status_code == 404
    login_as(client, w.auditor)
    assert client.get(page).status_code == 200
    assert post(client, page + "/close", {"confirm": "y"}).status_code in (403, 404)
    login_as(client, w.town_admin)
    assert client.post(page + "/close", data={"confirm": "y"}).status_code == 400  # no token
    assert _actions(session) == []
