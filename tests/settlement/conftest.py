"""Settlement fixtures: the POS world (a partner, a 3-star household with money and points)
plus a towel worth 50 points at a settlement price of 5 yuan, admins and a worked day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy.orm import Session

from mall.catalog.services import create_goods
from mall.clock import business_date, local_zone, utcnow
from mall.payments.models import Payment
from mall.payments.refunds import refund_payment
from mall.payments.services import ItemRequest, PayRequest, create_payment
from mall.users.models import User
from tests.factories import make_user
from tests.pos_adapter.conftest import World, world

__all__ = ["world"]


def after_cutoff(day: date, hour: int = 2) -> datetime:
    """A moment just after `day`'s cut-off (02:00 local the next morning)."""
    local = datetime.combine(day + timedelta(days=1), time(hour, 1), tzinfo=local_zone())
    return local.astimezone(UTC)


def pay(
    session: Session, w: World, amount_fen: int, *, towels: int = 0, ref: str | None = None
) -> Payment:
    return create_payment(
        session,
        w.partner,
        PayRequest(
            code=w.code(session),
            amount_fen=amount_fen,
            items=[ItemRequest("TOWEL50", towels)] if towels else [],
            external_ref=ref,
        ),
        terminal_code="test",
    ).payment


@dataclass
class Day:
    world: World
    day: date
    payment: Payment
    admin: User
    county_admin: User


@pytest.fixture
def worked_day(session: Session, world: World) -> Day:
    """A 3-star household buys 100 yuan with 6% from integrity money (600 fen) and a towel
    for 50 points (settlement price 500 fen); then 30 yuan are refunded (180 fen back)."""
    create_goods(
        session,
        world.partner,
        sku="TOWEL50",
        name="毛巾",
        points_price=50,
        settlement_price_fen=500,
        stock=10,
    )
    payment = pay(session, world, 10_000, towels=1, ref="POS-0001")
    refund_payment(session, payment, amount_fen=3_000, items=None, actor="test")
    township = session.get(type(world.partner), world.partner.id)
    assert township is not None
    from mall.regions.models import Region

    region = session.get(Region, world.partner.township_id)
    assert region is not None
    county = session.get(Region, region.county_id)
    assert county is not None
    admin = make_user(session, "township_admin", region)
    county_admin = make_user(session, "county_admin", county)
    session.commit()
    return Day(world, business_date(utcnow()), payment, admin, county_admin)
