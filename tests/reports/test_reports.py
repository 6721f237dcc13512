"""Every report total equals the same total computed directly from the ledger postings."""

from __future__ import annotations

from collections import defaultdict
from datetime import date

import pytest
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from mall.benefits.models import BenefitUse
from mall.ledger.accounts import household_wallets, system_account
from mall.ledger.models import EXPIRED_FORFEITED, POINTS, Account, Entry, Posting
from mall.ledger.posting import Leg, post_entry
from mall.payments.services import void_payment
from mall.regions.models import Region
from mall.reports import queries
from mall.reports.scope import report_scope
from mall.settlement.closing import close_due_statements
from mall.settlement.payout import mark_paid
from mall.settlement.statements import day_statement
from mall.subjects.models import CreditSubject
from tests.factories import make_household, make_user
from tests.helpers import staff_headers
from tests.pos_adapter.conftest import fund_household, rate
from tests.settlement.conftest import Day, after_cutoff, pay

CLASSES = {
    ("household_points", "points_issued"): "points_issued",
    ("household_points", "points_deducted"): "points_deducted",
    ("household_points", "points_redeemed"): "points_redeemed",
    ("household_points", "points_refunded"): "points_redeemed",
    ("household_points", "hold_captured"): "points_redeemed",
    ("household_points", "points_expired"): "points_expired",
    ("household_integrity", "integrity_granted"): "integrity_granted_fen",
    ("household_integrity", "integrity_spent"): "integrity_spent_fen",
    ("household_integrity", "integrity_refunded"): "integrity_spent_fen",
    ("household_integrity", "hold_captured"): "integrity_spent_fen",
    ("household_integrity", "integrity_expired"): "integrity_expired_fen",
    ("household_integrity", "integrity_clawed_back"): "integrity_clawed_back_fen",
}
GAINS = {"points_issued", "integrity_granted_fen"}


def _busy_month(session: Session, d: Day) -> None:
    """More kinds of movement: a second household in another village, a void, an expiry,
    a payout."""
    w = d.world
    village2 = session.scalars(
        select(Region).where(Region.township_id == w.partner.township_id, Region.kind == "village")
    ).all()
    other = make_household(session, village2[0])
    rate(other, 2)
    session.flush()
    fund_household(session, other, integrity_fen=80_000, points=300)
    voided = pay(session, w, 3_000, towels=1)
    void_payment(session, voided, actor="t")
    wallets = household_wallets(session, other)
    t = other.township_id
    post_entry(
        session,
        township_id=t,
        kind="points_expired",
        legs=[
            Leg(wallets.points.id, -100),
            Leg(system_account(session, t, EXPIRED_FORFEITED, POINTS).id, 100),
        ],
        actor="test",
    )
    close_due_statements(session, after_cutoff(d.day))
    statement = day_statement(session, w.partner, d.day)
    from mall.daybook.models import SettlementStatement

    row = session.get(SettlementStatement, statement.statement_id)
    assert row is not None
    mark_paid(session, d.admin, row, reference="B-1", paid_on=d.day)


def _from_postings(
    session: Session, townships: list[int], last: date, by: str
) -> dict[int, dict[str, int]]:
    """The same figures by walking every posting in Python: no SQL aggregation."""
    entries = {(e.township_id, e.id): e for e in session.scalars(select(Entry))}
    accounts = {(a.township_id, a.id): a for a in session.scalars(select(Account))}
    villages = {s.id: s.village_id for s in session.scalars(select(CreditSubject))}
    out: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for p in session.scalars(select(Posting)):
        if p.township_id not in townships:
            continue
        account = accounts[(p.township_id, p.account_id)]
        if account.subject_id is None:
            continue
        entry = entries[(p.township_id, p.entry_id)]
        kind = entry.kind
        if entry.reverses_entry_id is not None:
            kind = entries[(p.township_id, entry.reverses_entry_id)].kind
        key = villages[account.subject_id] if by == "village" else p.township_id
        if entry.business_date <= last:
            balance = (
                "points_outstanding"
                if account.kind == "household_points"
                else "integrity_outstanding_fen"
            )
            out[key][balance] += p.amount
        if entry.business_date.strftime("%Y-%m") != last.strftime("%Y-%m"):
            continue
        measure = CLASSES.get((account.kind, kind))
        if measure is None:
            measure = (
                "points_other" if account.kind == "household_points" else "integrity_other_fen"
            )
            out[key][measure] += p.amount
        else:
            out[key][measure] += p.amount if measure in GAINS else -p.amount
    return out


@pytest.mark.parametrize("group_by", ["township", "village"])
def test_household_report_equals_ledger_postings(
    session: Session, worked_day: Day, group_by: str
) -> None:
    _busy_month(session, worked_day)
    scope = report_scope(session, worked_day.county_admin)
    month = worked_day.day.strftime("%Y-%m")
    first, last = queries.month_bounds(month, month)
    rows = queries.household_report(session, scope, group_by, first, last)
    expected = _from_postings(session, scope.township_ids, last, group_by)
    assert rows, "the month has activity"
    got = {r.group_id: r.values for r in rows if r.month == month}
    assert set(got) == set(expected)
    for key, values in got.items():
        for measure in queries.HOUSEHOLD_MEASURES:
            assert values[measure] == expected[key].get(measure, 0), (key, measure)
    total = {m: sum(v[m] for v in got.values()) for m in queries.HOUSEHOLD_MEASURES}
    assert total["points_redeemed"] == 50  # the voided towel nets to zero
    assert total["points_expired"] == 100
    assert total["integrity_spent_fen"] == 420  # 600 less the 180 refunded
    assert total["integrity_outstanding_fen"] == 120_000 + 100 + 80_000 - 420


def test_county_report_sums_the_townships(session: Session, worked_day: Day) -> None:
    _busy_month(session, worked_day)
    scope = report_scope(session, worked_day.county_admin)
    month = worked_day.day.strftime("%Y-%m")
    first, last = queries.month_bounds(month, month)
    towns = queries.household_report(session, scope, "township", first, last)
    county = queries.household_report(session, scope, "county", first, last)
    assert len(county) == 1
    assert county[0].group_id == worked_day.county_admin.county_id
    for measure in queries.HOUSEHOLD_MEASURES:
        assert county[0].values[measure] == sum(r.values[measure] for r in towns)


def test_partner_report_equals_payable_postings(session: Session, worked_day: Day) -> None:
    _busy_month(session, worked_day)
    scope = report_scope(session, worked_day.county_admin)
    month = worked_day.day.strftime("%Y-%m")
    first, last = queries.month_bounds(month, month)
    rows = {r.group_id: r.values for r in queries.partner_report(session, scope, first, last)}
    values = rows[worked_day.world.partner.id]
    assert values["points_redeemed"] == 50
    assert values["integrity_spent_fen"] == 420
    assert values["fen_settled"] == 420
    assert values["points_settled"] == 50
    assert values["payable_fen_outstanding"] == 0
    assert values["payable_points_outstanding"] == 0
    # The payables' ledger balances are what is outstanding.
    payables = session.scalars(
        select(Account).where(Account.partner_id == worked_day.world.partner.id)
    ).all()
    assert sum(a.posted_balance for a in payables) == 0


def test_months_roll_the_outstanding_balance(session: Session, worked_day: Day) -> None:
    scope = report_scope(session, worked_day.county_admin)
    month = worked_day.day.strftime("%Y-%m")
    y, m = worked_day.day.year, worked_day.day.month
    before = f"{y - 1:04d}-{m:02d}"
    first, last = queries.month_bounds(before, month)
    rows = queries.household_report(session, scope, "township", first, last)
    by_month = {r.month: r.values for r in rows}
    assert by_month[before]["integrity_outstanding_fen"] == 0
    assert by_month[month]["integrity_outstanding_fen"] == 120_000 + 100 - 420


def test_households_by_level_and_benefit_uses(session: Session, worked_day: Day) -> None:
    scope = report_scope(session, worked_day.county_admin)
    levels = queries.households_by_level(session, scope, "township")
    assert {(r["level_code"], r["households"]) for r in levels} == {("3", 1), ("5", 1)}
    month = worked_day.day.strftime("%Y-%m")
    first, last = queries.month_bounds(month, month)
    assert queries.benefit_use_report(session, scope, "township", first, last) == []
    assert session.scalars(select(BenefitUse)).first() is None


def test_region_isolation(session: Session, worked_day: Day) -> None:
    w = worked_day.world
    town = session.get(Region, w.partner.township_id)
    assert town is not None
    sibling = session.scalars(
        select(Region).where(
            Region.county_id == town.county_id, Region.kind == "township", Region.id != town.id
        )
    ).first()
    assert sibling is not None
    other_admin = make_user(session, "township_admin", sibling)
    scope = report_scope(session, other_admin)
    month = worked_day.day.strftime("%Y-%m")
    first, last = queries.month_bounds(month, month)
    assert scope.township_ids == [sibling.id]
    rows = queries.household_report(session, scope, "township", first, last)
    assert all(r.values[m] == 0 for r in rows for m in queries.HOUSEHOLD_MEASURES)
    from mall.errors import NotFound

    with pytest.raises(NotFound):
        report_scope(session, other_admin, town.id)


def test_api_reports_and_exports(client: FlaskClient, session: Session, worked_day: Day) -> None:
    month = worked_day.day.strftime("%Y-%m")
    headers = staff_headers(worked_day.county_admin)
    resp = client.get(
        f"/api/v1/admin/reports/ledger?from={month}&to={month}&group_by=village", headers=headers
    )
    assert resp.status_code == 200, resp.json
    assert resp.json["items"][0]["integrity_spent_fen"] == 420
    for path in ("ledger", "partners", "benefit-uses", "households-by-level"):
        url = f"/api/v1/admin/reports/{path}?from={month}&to={month}&format=xlsx"
        resp = client.get(url, headers=headers)
        assert resp.status_code == 200, (path, resp.json)
        import io

        sheet = load_workbook(io.BytesIO(resp.data)).worksheets[0]
        header = [c.value for c in next(sheet.iter_rows(max_row=1))]
        assert any("\u4e00" <= str(h)[0] <= "\u9fff" for h in header), header
        csv_resp = client.get(url.replace("xlsx", "csv"), headers=headers)
        assert csv_resp.data.startswith("\ufeff".encode())
    bad = client.get("/api/v1/admin/reports/ledger?from=2026-13&to=2026-01", headers=headers)
    assert bad.status_code == 400
    assert bad.json["error"]["code"] == "validation_error"
    clerk = make_user(
        session,
        "cashier",
        session.get(Region, worked_day.world.partner.township_id),  # type: ignore[arg-type]
        partner=worked_day.world.partner,
    )
    session.commit()
    resp = client.get(
        f"/api/v1/admin/reports/ledger?from={month}&to={month}", headers=staff_headers(clerk)
    )
    assert resp.status_code == 403
