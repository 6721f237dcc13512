"""Staff settlement API: scoped reads, audited writes, exports, OpenAPI."""

from __future__ import annotations

import io
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from mall.audit.models import AuditEntry
from mall.regions.models import Region
from mall.settlement.closing import close_due_statements
from tests.factories import make_county, make_partner, make_user
from tests.helpers import staff_headers
from tests.settlement.conftest import Day, after_cutoff

URL = "/api/v1/admin/settlement"


def test_day_close_reopen_pay(client: FlaskClient, session: Session, worked_day: Day) -> None:
    d = worked_day
    h = staff_headers(d.admin)
    day_url = f"{URL}/statements/{d.world.partner.id}/{d.day.isoformat()}"
    resp = client.get(day_url, headers=h)
    assert resp.status_code == 200, resp.json
    assert resp.json["statement"]["status"] == "open"
    assert resp.json["statement"]["net_payable_fen"] == 920
    # Today cannot be closed by hand.
    assert client.post(f"{day_url}/close", json={}, headers=h).status_code == 400

    close_due_statements(session, after_cutoff(d.day))
    session.commit()
    body = client.get(day_url, headers=h).json
    statement_id = body["statement"]["statement_id"]
    assert body["statement"]["closed"] is True
    assert [v["version"] for v in body["versions"]] == [1]

    paid = client.post(
        f"{URL}/statements/{statement_id}/pay",
        json={"reference": "BANK-7", "paid_on": d.day.isoformat()},
        headers=h,
    )
    assert paid.status_code == 200, paid.json
    assert paid.json["paid_reference"] == "BANK-7"
    owed = client.get(f"{URL}/outstanding", headers=h).json["items"]
    assert owed == [
        {
            "partner_id": d.world.partner.id,
            "partner_name": d.world.partner.name,
            "integrity_fen": 0,
            "points": 0,
        }
    ]

    reopened = client.post(
        f"{URL}/statements/{statement_id}/reopen", json={"reason": "对账差异"}, headers=h
    )
    assert reopened.status_code == 201, reopened.json
    assert reopened.json["version"] == 2
    assert reopened.json["status"] == "open"
    assert (
        client.post(
            f"{URL}/statements/{statement_id}/reopen", json={"reason": "x"}, headers=h
        ).status_code
        == 409
    )
    actions = set(session.scalars(select(AuditEntry.action)))
    assert {"settlement.pay", "settlement.reopen"} <= actions


def test_exports_have_chinese_headers(
    client: FlaskClient, session: Session, worked_day: Day
) -> None:
    d = worked_day
    h = staff_headers(d.county_admin)
    first, last = d.day - timedelta(days=30), d.day
    url = f"{URL}/statements?partner_id={d.world.partner.id}&from={first}&to={last}"
    body = client.get(url, headers=h).json
    assert body["totals"]["net_payable_fen"] == 920
    xlsx = client.get(url + "&format=xlsx", headers=h)
    assert xlsx.status_code == 200
    sheet = load_workbook(io.BytesIO(xlsx.data)).worksheets[0]
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert rows[0][:5] == ["商户编号", "商户名称", "营业日", "版本", "状态"]
    assert "应付净额(分)" in rows[0]
    net = rows[0].index("应付净额(分)")
    assert rows[1][net] == 920
    assert rows[-1][2] == "合计"
    csv_resp = client.get(url + "&format=csv", headers=h)
    text = csv_resp.data.decode("utf-8")
    assert text.startswith("\ufeff商户编号,商户名称,营业日")
    one = client.get(
        f"{URL}/statements/{d.world.partner.id}/{d.day.isoformat()}?format=xlsx", headers=h
    )
    assert load_workbook(io.BytesIO(one.data)).worksheets[0]["C2"].value == d.day.isoformat()
    too_long = client.get(
        f"{URL}/statements?partner_id={d.world.partner.id}&from={d.day - timedelta(days=200)}"
        f"&to={d.day}",
        headers=h,
    )
    assert too_long.status_code == 400


def test_reconciliation_upload(client: FlaskClient, session: Session, worked_day: Day) -> None:
    d = worked_day
    cashier = make_user(
        session,
        "cashier",
        session.get(Region, d.world.partner.township_id),  # type: ignore[arg-type]
        partner=d.world.partner,
    )
    session.commit()
    content = "外部单号,金额(分),诚信金抵扣(分)\r\nPOS-0001,10000,601\r\n".encode()
    resp = client.post(
        f"{URL}/reconciliations",
        data={
            "partner_id": str(d.world.partner.id),
            "business_date": d.day.isoformat(),
            "file": (io.BytesIO(content), "对账单.csv"),
        },
        headers=staff_headers(cashier),
        content_type="multipart/form-data",
    )
    assert resp.status_code == 201, resp.json
    assert resp.json["mismatched_count"] == 1
    assert resp.json["missing_count"] == 1
    rec_id = resp.json["id"]
    listed = client.get(f"{URL}/reconciliations", headers=staff_headers(d.admin)).json
    assert [r["id"] for r in listed["items"]] == [rec_id]
    one = client.get(f"{URL}/reconciliations/{rec_id}", headers=staff_headers(cashier))
    assert one.json["result"]["mismatched"][0]["differences"]["integrity_discount_fen"] == {
        "ours": 600,
        "theirs": 601,
    }
    # A cashier cannot see another partner, nor settle anything.
    other = client.get(
        f"{URL}/statements/{d.world.other_partner.id}/{d.day.isoformat()}",
        headers=staff_headers(cashier),
    )
    assert other.status_code == 404
    assert client.get(f"{URL}/outstanding", headers=staff_headers(cashier)).status_code == 200
    day_url = f"{URL}/statements/{d.world.partner.id}/{d.day.isoformat()}"
    assert (
        client.post(f"{day_url}/close", json={}, headers=staff_headers(cashier)).status_code == 403
    )


def test_region_isolation(client: FlaskClient, session: Session, worked_day: Day) -> None:
    d = worked_day
    elsewhere = make_county(session, townships=1, villages_per_township=1)
    stranger = make_user(session, "county_admin", elsewhere.county)
    sibling_admin = make_user(
        session,
        "township_admin",
        session.scalars(
            select(Region).where(
                Region.county_id == d.county_admin.county_id,
                Region.kind == "township",
                Region.id != d.world.partner.township_id,
            )
        ).one(),
    )
    make_partner(session, elsewhere.townships[0])
    session.commit()
    day_url = f"{URL}/statements/{d.world.partner.id}/{d.day.isoformat()}"
    for user in (stranger, sibling_admin):
        assert client.get(day_url, headers=staff_headers(user)).status_code == 404
        assert client.get(f"{URL}/outstanding", headers=staff_headers(user)).json["items"] == []
        assert client.get(f"{URL}/reconciliations", headers=staff_headers(user)).json["items"] == []
    assert client.get(day_url).status_code == 401


def test_every_endpoint_in_openapi(app: Flask, client: FlaskClient) -> None:
    spec = client.get("/openapi.json").json
    paths = set(spec["paths"])
    for path in (
        "/api/v1/admin/settlement/statements",
        "/api/v1/admin/settlement/statements/{partner_id}/{business_date}",
        "/api/v1/admin/settlement/statements/{partner_id}/{business_date}/close",
        "/api/v1/admin/settlement/statements/{statement_id}/reopen",
        "/api/v1/admin/settlement/statements/{statement_id}/pay",
        "/api/v1/admin/settlement/outstanding",
        "/api/v1/admin/settlement/reconciliations",
        "/api/v1/admin/settlement/reconciliations/{reconciliation_id}",
        "/api/v1/admin/reports/ledger",
        "/api/v1/admin/reports/partners",
        "/api/v1/admin/reports/benefit-uses",
        "/api/v1/admin/reports/households-by-level",
    ):
        assert path in paths, path


def test_out_of_range_ids_and_bad_dates(client: FlaskClient, worked_day: Day) -> None:
    h = staff_headers(worked_day.admin)
    assert client.get(f"{URL}/statements/99999999999/2026-01-01", headers=h).status_code == 404
    assert client.get(f"{URL}/statements/1/2026-13-01", headers=h).status_code == 400
    too_big = 2**70
    assert (
        client.post(
            f"{URL}/statements/{too_big}/pay",
            json={"reference": "x", "paid_on": "2026-01-01"},
            headers=h,
        ).status_code
        == 404
    )
    assert client.get(f"{URL}/reconciliations/{too_big}", headers=h).status_code == 404
