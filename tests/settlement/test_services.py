"""Statements, closing, reopening, payout and the ledger: worked examples."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mall.audit.models import AuditEntry
from mall.daybook import services as daybook
from mall.daybook.models import SettlementStatement
from mall.errors import Conflict, ValidationFailed
from mall.ledger.accounts import partner_payable, system_account
from mall.ledger.models import CNY, POINTS, SETTLED_PAYOUTS, Entry, Posting
from mall.payments.refunds import refund_payment
from mall.payments.services import business_date_settled, void_payment
from mall.payments.statements import daily_statement
from mall.settlement import closing, payout, statements
from tests.settlement.conftest import Day, after_cutoff, pay


def _close(session: Session, d: Day) -> SettlementStatement:
    assert closing.close_due_statements(session, after_cutoff(d.day)) == 1
    row = daybook.current_statement(session, d.world.partner.id, d.day)
    assert row is not None
    return row


def test_worked_day(session: Session, worked_day: Day) -> None:
    view = statements.day_statement(session, worked_day.world.partner, worked_day.day)
    assert view.status == "open"
    assert view.statement_id is None
    assert view.figures == {
        "payments_count": 1,
        "sales_amount_fen": 10_000,
        "integrity_discount_fen": 600,  # 6% of 100 yuan
        "offline_shortfall_fen": 0,
        "points_redeemed": 50,
        "points_settlement_fen": 500,  # the towel at its settlement price
        "cash_due_fen": 9_400,
        "voided_count": 0,
        "needs_review_count": 0,
        "refunds_count": 1,
        "refunded_amount_fen": 3_000,
        "refunded_integrity_fen": 180,  # 600 * 3000 / 10000
        "refunded_points": 0,
        "refunded_settlement_fen": 0,
        "net_payable_fen": 600 + 500 - 180,
    }
    township = worked_day.world.household.township_id
    assert view.by_township == [
        {"township_id": township, "integrity_fen": 420, "points": 50, "settlement_fen": 500}
    ]


def test_statement_agrees_with_ledger_payables(session: Session, worked_day: Day) -> None:
    w = worked_day.world
    extra = pay(session, w, 2_000)
    void_payment(session, extra, actor="t")  # nets to zero on the same business date
    row = _close(session, worked_day)
    for asset, key in ((CNY, "integrity_fen"), (POINTS, "points")):
        payable = partner_payable(session, w.household.township_id, w.partner.id, asset)
        moved = session.scalar(
            select(func.sum(Posting.amount))
            .join(
                Entry, (Entry.township_id == Posting.township_id) & (Entry.id == Posting.entry_id)
            )
            .where(
                Posting.township_id == payable.township_id,
                Posting.account_id == payable.id,
                Entry.business_date == worked_day.day,
            )
        )
        assert moved == row.by_township[0][key]
    assert row.voided_count == 1
    assert row.payments_count == 1


def test_closing_freezes_and_later_refunds_roll_into_next_day(
    session: Session, worked_day: Day
) -> None:
    d = worked_day
    row = _close(session, d)
    assert row.status == "closed"
    assert row.version == 1
    assert row.net_payable_fen == 920
    assert business_date_settled(session, d.world.partner.id, d.day)
    assert daily_statement(session, d.world.partner.id, d.day)["closed"] is True
    # Closing again changes nothing.
    assert closing.close_due_statements(session, after_cutoff(d.day) + timedelta(hours=5)) == 0

    late = refund_payment(session, d.payment, amount_fen=1_000, items=None, actor="t")
    assert late.business_date == d.day + timedelta(days=1)
    frozen = statements.day_statement(session, d.world.partner, d.day)
    assert frozen.figures["refunds_count"] == 1
    assert frozen.figures["net_payable_fen"] == 920
    pos_view = daily_statement(session, d.world.partner.id, d.day)
    assert pos_view["net_payable_fen"] == 920
    assert pos_view["refunded_amount_fen"] == 3_000
    nxt = statements.day_statement(session, d.world.partner, d.day + timedelta(days=1))
    assert nxt.figures["refunds_count"] == 1
    assert nxt.figures["refunded_integrity_fen"] == 60
    assert nxt.figures["net_payable_fen"] == -60


def test_void_refused_once_closed(session: Session, worked_day: Day) -> None:
    d = worked_day
    other = pay(session, d.world, 1_000)
    _close(session, d)
    with pytest.raises(Conflict) as exc:
        void_payment(session, other, actor="t")
    assert exc.value.details == {"reason": "settled"}


def test_admin_close_only_past_days(session: Session, worked_day: Day) -> None:
    d = worked_day
    with pytest.raises(ValidationFailed):
        closing.close_statement(session, d.admin, d.world.partner, d.day)
    row = closing.close_statement(
        session, d.admin, d.world.partner, d.day, now=after_cutoff(d.day) - timedelta(hours=1)
    )
    assert row.status == "closed"
    with pytest.raises(Conflict):
        closing.close_statement(session, d.admin, d.world.partner, d.day, now=after_cutoff(d.day))
    audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "settlement.close")).all()
    assert [a.object_id for a in audit] == [str(row.id)]


def test_reopen_makes_a_new_version(session: Session, worked_day: Day) -> None:
    d = worked_day
    other = pay(session, d.world, 5_000)  # 300 fen discount
    v1 = _close(session, d)
    assert v1.net_payable_fen == 1_220
    with pytest.raises(ValidationFailed):
        closing.reopen_statement(session, d.admin, v1, "  ")
    v2 = closing.reopen_statement(session, d.admin, v1, "商户申请撤销一笔交易")
    assert (v1.status, v2.status, v2.version) == ("superseded", "open", 2)
    assert not business_date_settled(session, d.world.partner.id, d.day)
    void_payment(session, other, actor="t")  # allowed again while reopened
    # A late booking of the reopened day stays on it.
    assert daybook.first_open_date(session, d.world.partner.id, d.day) == d.day
    assert closing.close_due_statements(session, after_cutoff(d.day)) == 1
    session.refresh(v2)
    assert v2.status == "closed"
    assert v2.net_payable_fen == 920
    assert v1.net_payable_fen == 1_220  # the old version keeps its figures
    versions = statements.history(session, d.world.partner.id, d.day)
    assert [(v.version, v.status) for v in versions] == [(1, "superseded"), (2, "closed")]
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "settlement.reopen"))
    assert entry is not None
    assert entry.note == "商户申请撤销一笔交易"
    assert entry.before == {"statement_id": v1.id, "version": 1, "status": "closed"}


def _balances(session: Session, d: Day) -> tuple[int, int, int, int]:
    t = d.world.household.township_id
    p_cny = partner_payable(session, t, d.world.partner.id, CNY)
    p_pts = partner_payable(session, t, d.world.partner.id, POINTS)
    s_cny = system_account(session, t, SETTLED_PAYOUTS, CNY)
    s_pts = system_account(session, t, SETTLED_PAYOUTS, POINTS)
    for a in (p_cny, p_pts, s_cny, s_pts):
        session.refresh(a)
    return p_cny.posted_balance, p_pts.posted_balance, s_cny.posted_balance, s_pts.posted_balance


def test_payout_moves_payables_to_settled(session: Session, worked_day: Day) -> None:
    d = worked_day
    assert _balances(session, d) == (420, 50, 0, 0)
    row = _close(session, d)
    payout.mark_paid(session, d.admin, row, reference="BANK-001", paid_on=d.day)
    assert _balances(session, d) == (0, 0, 420, 50)
    entries = session.scalars(select(Entry).where(Entry.kind == "settled")).all()
    assert {e.idempotency_key for e in entries} == {
        f"settle:{row.id}:v1:{d.world.household.township_id}:CNY",
        f"settle:{row.id}:v1:{d.world.household.township_id}:POINTS",
    }
    # The same request again is a no-op; a different one is refused.
    payout.mark_paid(session, d.admin, row, reference="BANK-001", paid_on=d.day)
    assert _balances(session, d) == (0, 0, 420, 50)
    with pytest.raises(Conflict):
        payout.mark_paid(session, d.admin, row, reference="BANK-002", paid_on=d.day)
    owed = payout.outstanding_payables(session, d.admin)
    assert [(o.integrity_fen, o.points) for o in owed] == [(0, 0)]


def test_paying_a_reopened_day_settles_only_the_difference(
    session: Session, worked_day: Day
) -> None:
    d = worked_day
    other = pay(session, d.world, 5_000)
    v1 = _close(session, d)
    payout.mark_paid(session, d.admin, v1, reference="BANK-001", paid_on=d.day)
    assert _balances(session, d) == (0, 0, 720, 50)
    v2 = closing.reopen_statement(session, d.admin, v1, "撤销")
    void_payment(session, other, actor="t")  # the payable goes -300 (over-paid)
    assert _balances(session, d)[0] == -300
    closing.close_due_statements(session, after_cutoff(d.day))
    session.refresh(v2)
    payout.mark_paid(session, d.admin, v2, reference="BANK-001-ADJ", paid_on=d.day)
    assert _balances(session, d) == (0, 0, 420, 50)


def test_unpaid_open_statement_cannot_be_paid(session: Session, worked_day: Day) -> None:
    d = worked_day
    v1 = _close(session, d)
    v2 = closing.reopen_statement(session, d.admin, v1, "复核")
    with pytest.raises(Conflict):
        payout.mark_paid(session, d.admin, v2, reference="X", paid_on=d.day)


def test_cutoff_is_a_region_setting(session: Session, worked_day: Day) -> None:
    from mall.regions.models import Region
    from mall.regions.services import update_settings

    d = worked_day
    region = session.get(Region, d.world.partner.township_id)
    assert region is not None
    update_settings(session, region, {"settlement_cutoff_hour": 6})
    assert closing.close_due_statements(session, after_cutoff(d.day, 2)) == 0
    assert closing.close_due_statements(session, after_cutoff(d.day, 6)) == 1


def test_jobs_command_closes_due_days(session: Session, worked_day: Day) -> None:
    from mall.jobs.services import _steps

    names = [name for name, _ in _steps(worked_day.day)]
    assert "settlement_closing" in names


def test_period_statement_adds_up(session: Session, worked_day: Day) -> None:
    d = worked_day
    _close(session, d)
    refund_payment(session, d.payment, amount_fen=1_000, items=None, actor="t")
    period = statements.period_statement(
        session, d.world.partner, d.day - timedelta(days=3), d.day + timedelta(days=3)
    )
    assert [v.business_date for v in period.days] == [d.day, d.day + timedelta(days=1)]
    assert [v.status for v in period.days] == ["closed", "open"]
    assert period.totals["net_payable_fen"] == 920 - 60
    assert period.totals["refunds_count"] == 2


def test_late_offline_sale_rolls_into_next_open_day(session: Session, worked_day: Day) -> None:
    from mall.clock import utcnow
    from mall.payments.models import Payment
    from mall.payments.offline import OfflineSale, apply_sale

    d = worked_day
    _close(session, d)
    w = d.world
    result = apply_sale(
        session,
        w.terminal,
        w.partner,
        "batch-1",
        OfflineSale("local-1", w.code(session), utcnow(), 1_000, 60),
    )
    assert result["status"] == "applied"
    payment = session.scalar(select(Payment).where(Payment.public_id == result["payment_id"]))
    assert payment is not None
    assert payment.business_date == d.day + timedelta(days=1)
    frozen = statements.day_statement(session, w.partner, d.day)
    assert frozen.figures["payments_count"] == 1


def test_database_refuses_to_change_a_closed_statement(session: Session, worked_day: Day) -> None:
    from sqlalchemy import delete, update
    from sqlalchemy.exc import DBAPIError

    row = _close(session, worked_day)
    for stmt in (
        update(SettlementStatement)
        .where(SettlementStatement.id == row.id)
        .values(net_payable_fen=1),
        update(SettlementStatement).where(SettlementStatement.id == row.id).values(status="open"),
        delete(SettlementStatement).where(SettlementStatement.id == row.id),
    ):
        with pytest.raises(DBAPIError), session.begin_nested():
            session.execute(stmt)
    payout.mark_paid(session, worked_day.admin, row, reference="B", paid_on=worked_day.day)
    with pytest.raises(DBAPIError), session.begin_nested():
        session.execute(
            update(SettlementStatement)
            .where(SettlementStatement.id == row.id)
            .values(paid_reference="C")
        )
