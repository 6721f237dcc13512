"""Reservations, worked through the ledger: what is held, spent, released, and counted."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mall.clock import as_aware, business_date, utcnow
from mall.codes.services import sign_dynamic_code
from mall.errors import Conflict, Forbidden, NotFound, ValidationFailed
from mall.extensions import db
from mall.jobs.services import run_jobs
from mall.ledger.models import Entry, Hold
from mall.ledger.verify import verify_ledger
from mall.payments.models import Payment
from mall.payments.services import ItemRequest, PayRequest, create_payment
from mall.regions.services import update_settings
from mall.reservations import services
from mall.reservations.models import Reservation
from mall.settlement.figures import compute_day
from mall.subjects.models import CreditSubject
from tests.factories import make_household
from tests.pos_adapter.conftest import fund_household, rate
from tests.reservations.conftest import Shop, payable_points, points_wallet, stock

ACTOR = "terminal:T-test"


def _reserve(session: Session, shop: Shop, **qty: int) -> Reservation:
    r = services.reserve(session, shop.household, shop.partner.id, shop.items(**qty))
    session.commit()
    return r


def _hold(session: Session, r: Reservation) -> Hold:
    hold = session.scalar(select(Hold).where(Hold.id == r.points_hold_id))
    assert hold is not None
    session.refresh(hold)
    return hold


def test_reserve_holds_points_and_sets_stock_aside(session: Session, shop: Shop) -> None:
    r = _reserve(session, shop, towel=2, soap=1)
    assert r.status == "open"
    assert r.points_total == 70
    assert len(r.pickup_code) == 8
    assert r.pickup_code.isdigit()
    assert points_wallet(session, shop.household) == {"posted": 1000, "held": 70, "available": 930}
    assert stock(session, shop.towel) == 8
    assert stock(session, shop.soap) == 0
    assert services.reserved_qty(session, [shop.towel.id, shop.soap.id]) == {
        shop.towel.id: 2,
        shop.soap.id: 1,
    }
    hold = _hold(session, r)
    assert hold.status == "open"
    assert hold.amount == 70
    assert as_aware(hold.expires_at) == as_aware(r.expires_at)
    # nothing posted yet: no entry names the reservation
    assert session.scalars(select(Entry).where(Entry.source_id == r.public_id)).all() == []


def test_deadline_is_the_end_of_the_last_local_day(session: Session, shop: Shop) -> None:
    r = _reserve(session, shop, towel=1)
    local = as_aware(r.expires_at).astimezone(services.local_zone())
    assert local.time().isoformat() == "00:00:00"
    assert local.date() == business_date() + timedelta(days=8)  # 7 days, then midnight


def test_full_pickup_posts_a_points_redemption(session: Session, shop: Shop) -> None:
    r = _reserve(session, shop, towel=2)
    services.pickup(session, shop.partner, r.pickup_code, actor=ACTOR)
    session.commit()
    session.refresh(r)
    assert r.status == "picked_up"
    assert r.picked_points == 60
    payment = session.get(Payment, r.payment_id)
    assert payment is not None
    assert (payment.status, payment.code_kind, payment.points_cost) == ("completed", "pickup", 60)
    assert payment.points_settlement_fen == 1600
    assert payment.external_ref == r.public_id
    entry = session.get(Entry, (payment.township_id, payment.points_entry_id))
    assert entry is not None
    assert entry.kind == "points_redeemed"
    assert entry.hold_id == r.points_hold_id
    assert points_wallet(session, shop.household) == {"posted": 940, "held": 0, "available": 940}
    assert payable_points(session, shop) == 60
    assert stock(session, shop.towel) == 8  # handed over: gone for good
    assert _hold(session, r).status == "captured"
    assert verify_ledger(session.connection(), shop.household.township_id).ok


def test_partial_pickup_captures_less_and_releases_the_rest(session: Session, shop: Shop) -> None:
    r = _reserve(session, shop, towel=3, soap=1)  # 100 points held
    services.pickup(
        session, shop.partner, r.pickup_code, [ItemRequest("TOWEL", 2)], actor=ACTOR
    )  # one towel missing, no soap on the shelf
    session.commit()
    session.refresh(r)
    assert r.picked_points == 60
    assert {ln.sku: ln.picked_qty for ln in r.lines} == {"TOWEL": 2, "SOAP": 0}
    payment = session.get(Payment, r.payment_id)
    assert payment is not None
    assert [(i.sku, i.qty) for i in payment.items] == [("TOWEL", 2)]
    assert payment.points_cost == 60
    assert payment.points_settlement_fen == 1600
    hold = _hold(session, r)
    assert (hold.status, hold.amount, hold.captured_amount) == ("captured", 100, 60)
    assert points_wallet(session, shop.household) == {"posted": 940, "held": 0, "available": 940}
    assert payable_points(session, shop) == 60
    assert stock(session, shop.towel) == 8  # 10 - 3 reserved + 1 not handed over
    assert stock(session, shop.soap) == 1
    assert verify_ledger(session.connection(), shop.household.township_id).ok


def test_pickup_twice_is_refused(session: Session, shop: Shop) -> None:
    r = _reserve(session, shop, towel=1)
    services.pickup(session, shop.partner, r.pickup_code, actor=ACTOR)
    session.commit()
    with pytest.raises(Conflict) as exc:
        services.pickup(session, shop.partner, r.pickup_code, actor=ACTOR)
    assert exc.value.code == "invalid_state"
    assert exc.value.details["status"] == "picked_up"


def test_cancel_after_pickup_is_refused(session: Session, shop: Shop) -> None:
    r = _reserve(session, shop, towel=1)
    services.pickup(session, shop.partner, r.pickup_code, actor=ACTOR)
    session.commit()
    with pytest.raises(Conflict) as exc:
        services.cancel(session, shop.household, r.public_id)
    assert exc.value.code == "invalid_state"
    assert points_wallet(session, shop.household)["posted"] == 970


def test_cancel_before_pickup_releases_everything(session: Session, shop: Shop) -> None:
    r = _reserve(session, shop, towel=2, soap=1)
    services.cancel(session, shop.household, r.public_id)
    session.commit()
    session.refresh(r)
    assert (r.status, r.end_reason) == ("cancelled", "cancelled_by_household")
    assert points_wallet(session, shop.household) == {"posted": 1000, "held": 0, "available": 1000}
    assert stock(session, shop.towel) == 10
    assert stock(session, shop.soap) == 1
    assert _hold(session, r).status == "voided"
    with pytest.raises(Conflict):
        services.cancel(session, shop.household, r.public_id)
    with pytest.raises(Conflict):
        services.pickup(session, shop.partner, r.pickup_code, actor=ACTOR)


def test_another_partner_cannot_pick_up(session: Session, shop: Shop) -> None:
    r = _reserve(session, shop, towel=1)
    with pytest.raises(NotFound):
        services.pickup(session, shop.other_partner, r.pickup_code, actor=ACTOR)
    with pytest.raises(NotFound):
        services.find_for_partner(session, shop.other_partner.id, r.pickup_code)


def test_another_household_cannot_see_or_cancel(session: Session, shop: Shop) -> None:
    r = _reserve(session, shop, towel=1)
    neighbour = make_household(session, shop.county.villages[0], name="王小明")
    with pytest.raises(NotFound):
        services.cancel(session, neighbour, r.public_id)


def test_codes_as_typed_or_scanned(session: Session, shop: Shop) -> None:
    r = _reserve(session, shop, towel=1)
    c = r.pickup_code
    for typed in (c, f"{c[:4]} {c[4:]}", f"{c[:4]}-{c[4:]}", f" {c} "):
        assert services.find_for_partner(session, shop.partner.id, typed).id == r.id
    wide = "".join(chr(ord(ch) + 0xFEE0) for ch in c)  # full-width digits from a Chinese IME
    assert services.find_for_partner(session, shop.partner.id, wide).id == r.id
    for bad in ("", c[:7], c + "1", "abcdefgh", None, 12345678):
        with pytest.raises(NotFound):
            services.find_for_partner(session, shop.partner.id, bad)


def test_level_too_low(session: Session, shop: Shop) -> None:
    with pytest.raises(Forbidden) as exc:
        services.reserve(session, shop.household, shop.partner.id, shop.items(rice=1))
    assert exc.value.code == "level_too_low"
    session.rollback()
    rate(shop.household, 4)
    session.commit()
    assert _reserve(session, shop, rice=1).points_total == 100
    unrated = make_household(session, shop.county.villages[0], name="李四")
    fund_household(session, unrated, points=500)
    with pytest.raises(Forbidden) as exc:
        services.reserve(session, unrated, shop.partner.id, shop.items(rice=1))
    assert exc.value.code == "level_too_low"


def test_suspended_household_cannot_reserve(session: Session, shop: Shop) -> None:
    shop.household.status = "frozen"
    session.commit()
    with pytest.raises(Forbidden) as exc:
        services.reserve(session, shop.household, shop.partner.id, shop.items(towel=1))
    assert exc.value.code == "holder_suspended"


def test_limits_per_household_and_item(session: Session, shop: Shop) -> None:
    for _ in range(3):
        _reserve(session, shop, towel=1)
    with pytest.raises(Conflict) as exc:
        services.reserve(session, shop.household, shop.partner.id, shop.items(towel=1))
    assert exc.value.code == "reservation_limit_reached"
    assert exc.value.details["max_open"] == 3
    session.rollback()
    with pytest.raises(Conflict) as exc:
        services.reserve(session, shop.household, shop.partner.id, shop.items(towel=6))
    assert exc.value.details["max_qty_per_item"] == 5
    session.rollback()
    # the township changes its settings: one open reservation, ten of an item
    update_settings(
        session, shop.county.townships[0], {"reservation_max_open": 5, "reservation_max_qty": 10}
    )
    session.commit()
    _reserve(session, shop, towel=2)
    with pytest.raises(ValidationFailed):
        services.reserve(session, shop.household, shop.partner.id, [])


def test_not_enough_points_or_stock(session: Session, shop: Shop) -> None:
    poor = make_household(session, shop.county.villages[0], name="赵五")
    rate(poor, 3)
    fund_household(session, poor, points=20)
    session.commit()
    with pytest.raises(Conflict) as exc:
        services.reserve(session, poor, shop.partner.id, shop.items(towel=1))
    assert exc.value.code == "insufficient_points"
    session.rollback()
    with pytest.raises(Conflict) as exc:
        services.reserve(session, shop.household, shop.partner.id, shop.items(soap=2))
    assert exc.value.code == "out_of_stock"
    session.rollback()
    with pytest.raises(NotFound):
        services.reserve(session, shop.household, shop.partner.id, shop.items(nope=1))


def test_a_pickup_code_taken_meanwhile_is_drawn_again(
    session: Session, shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two reservations at one partner may draw the same new code at once: `_unused_code`
    checks, but neither sees the other's uncommitted row. Here its check is passed by a code
    an open reservation holds; the partial unique index refuses the INSERT, and the
    reservation is inserted again with a fresh code instead of failing with a 500."""
    first = _reserve(session, shop, towel=1)
    drawn = [first.pickup_code]
    unused_code = services._unused_code
    monkeypatch.setattr(
        services,
        "_unused_code",
        lambda s, partner_id: drawn.pop() if drawn else unused_code(s, partner_id),
    )
    second = services.reserve(
        session, shop.household, shop.partner.id, shop.items(soap=1), client_key="k2"
    )
    session.commit()
    assert not drawn
    assert second.pickup_code != first.pickup_code
    session.expire_all()
    rows = session.scalars(select(Reservation).order_by(Reservation.id)).all()
    assert [(r.pickup_code, [ln.sku for ln in r.lines]) for r in rows] == [
        (first.pickup_code, ["TOWEL"]),
        (second.pickup_code, ["SOAP"]),
    ]
    assert rows[1].client_key == "k2"
    assert points_wallet(session, shop.household)["held"] == 40


def test_no_free_pickup_code_is_a_conflict_not_a_500(
    session: Session, shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _reserve(session, shop, towel=1)
    monkeypatch.setattr(services, "_unused_code", lambda s, partner_id: first.pickup_code)
    with pytest.raises(Conflict) as exc:
        services.reserve(session, shop.household, shop.partner.id, shop.items(soap=1))
    assert (exc.value.code, exc.value.status) == ("conflict", 409)


def test_same_client_key_gives_one_reservation(session: Session, shop: Shop) -> None:
    first = services.reserve(
        session, shop.household, shop.partner.id, shop.items(towel=1), client_key="k1"
    )
    session.commit()
    again = services.reserve(
        session, shop.household, shop.partner.id, shop.items(towel=1), client_key="k1"
    )
    assert again.id == first.id
    assert points_wallet(session, shop.household)["held"] == 30
    with pytest.raises(Conflict) as exc:
        services.reserve(
            session, shop.household, shop.partner.id, shop.items(towel=2), client_key="k1"
        )
    assert exc.value.code == "idempotency_conflict"


def test_expiry_releases_exactly_once(session: Session, shop: Shop) -> None:
    kept = _reserve(session, shop, towel=1)
    due = _reserve(session, shop, towel=2, soap=1)
    later = as_aware(due.expires_at) + timedelta(seconds=1)
    # nothing is due before the deadline
    assert services.expire_reservations(session, now=later - timedelta(seconds=2)) == 0
    services.pickup(session, shop.partner, kept.pickup_code, actor=ACTOR)
    assert services.expire_reservations(session, now=later) == 1
    session.commit()
    assert services.expire_reservations(session, now=later) == 0
    session.refresh(due)
    assert (due.status, due.end_reason) == ("expired", "not_collected_in_time")
    assert points_wallet(session, shop.household) == {"posted": 970, "held": 0, "available": 970}
    assert stock(session, shop.towel) == 9
    assert stock(session, shop.soap) == 1
    assert _hold(session, due).status == "voided"
    assert verify_ledger(session.connection(), shop.household.township_id).ok


def test_pickup_after_the_deadline_is_refused(
    session: Session, shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = _reserve(session, shop, towel=1)
    monkeypatch.setattr(services, "utcnow", lambda: as_aware(r.expires_at) + timedelta(minutes=1))
    with pytest.raises(Conflict) as exc:
        services.pickup(session, shop.partner, r.pickup_code, actor=ACTOR)
    assert exc.value.details["status"] == "expired"


def test_the_jobs_command_expires_reservations(
    session: Session, shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = _reserve(session, shop, towel=2)
    monkeypatch.setattr(services, "utcnow", lambda: utcnow() + timedelta(days=9))
    report = run_jobs(db.engine, session=session)
    assert report.done["reservations_expiry"] == 1
    assert list(report.done).index("reservations_expiry") < list(report.done).index("ledger_holds")
    session.refresh(r)
    assert r.status == "expired"
    assert points_wallet(session, shop.household)["held"] == 0
    assert stock(session, shop.towel) == 10
    assert run_jobs(db.engine, session=session).done["reservations_expiry"] == 0


def test_settlement_counts_a_pickup_like_a_till_redemption(session: Session, shop: Shop) -> None:
    """Two towels at the till and two towels reserved and picked up: the same figures."""
    code = sign_dynamic_code(session, shop.household).code
    create_payment(
        session,
        shop.partner,
        PayRequest(code=code, amount_fen=0, items=[ItemRequest("TOWEL", 2)]),
        terminal_code="T1",
    )
    session.commit()
    till_day = compute_day(session, shop.partner.id, business_date()).totals.copy()
    r = _reserve(session, shop, towel=3)
    services.pickup(session, shop.partner, r.pickup_code, [ItemRequest("TOWEL", 2)], actor=ACTOR)
    session.commit()
    both = compute_day(session, shop.partner.id, business_date())
    for key in ("payments_count", "points_redeemed", "points_settlement_fen", "net_payable_fen"):
        assert both.totals[key] == 2 * till_day[key], key
    assert both.totals["points_redeemed"] == 120
    assert both.totals["points_settlement_fen"] == 3200
    assert both.by_township() == [
        {
            "township_id": shop.household.township_id,
            "integrity_fen": 0,
            "points": 120,
            "settlement_fen": 3200,
        }
    ]
    # and the payables in the ledger agree with the statement
    assert payable_points(session, shop) == both.totals["points_redeemed"]


def test_the_household_is_judged_as_it_is_now_not_as_loaded(session: Session, shop: Shop) -> None:
    """A freeze written by another request after the household was loaded (here a bare
    UPDATE the session's copy does not see) refuses the reservation."""
    households = CreditSubject.__table__
    session.execute(
        update(households).where(households.c.id == shop.household.id).values(status="frozen")
    )
    assert shop.household.status == "active"  # as loaded
    with pytest.raises(Forbidden) as exc:
        services.reserve(session, shop.household, shop.partner.id, shop.items(towel=1))
    assert exc.value.code == "holder_suspended"
