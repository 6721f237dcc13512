"""Catalogue goods: create, edit, list, and stock that never goes below zero.

Stock moves only through `take_stock` and `restore_stock`, each one conditional UPDATE: on
PostgreSQL concurrent redemptions of the last item serialise on the row and exactly one wins;
the CHECK constraint is the backstop. Services flush only; the caller commits.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from mall.catalog.models import Goods
from mall.db import add_unique
from mall.errors import Conflict, NotFound, ValidationFailed
from mall.partners.models import Partner

_goods: Table = Goods.__table__  # type: ignore[assignment]

EDITABLE = ("name", "points_price", "settlement_price_fen", "stock", "min_level_rank", "active")


def create_goods(
    session: Session,
    partner: Partner,
    *,
    sku: str,
    name: str,
    points_price: int,
    settlement_price_fen: int,
    stock: int = 0,
    min_level_rank: int | None = None,
    active: bool = True,
) -> Goods:
    if session.scalar(select(Goods.id).where(Goods.partner_id == partner.id, Goods.sku == sku)):
        raise Conflict(details={"fields": {"sku": ["already exists for this partner"]}})
    goods = Goods(
        partner_id=partner.id,
        county_id=partner.county_id,
        township_id=partner.township_id,
        sku=sku,
        name=name,
        points_price=points_price,
        settlement_price_fen=settlement_price_fen,
        stock=stock,
        min_level_rank=min_level_rank,
        active=active,
    )
    # The check above answers the common case; two admins adding the same SKU at once
    # both pass it, and the unique key refuses the second: a Conflict, not a 500.
    add_unique(
        session, goods, Conflict(details={"fields": {"sku": ["already exists for this partner"]}})
    )
    return goods


def update_goods(session: Session, goods: Goods, changes: dict[str, Any]) -> dict[str, Any]:
    """Apply the editable fields in `changes`; returns the previous values (for the audit)."""
    before = {}
    for name in EDITABLE:
        if name in changes:
            before[name] = getattr(goods, name)
            setattr(goods, name, changes[name])
    session.flush()
    return before


def list_goods(session: Session, partner_id: int, *, active_only: bool = False) -> list[Goods]:
    stmt = select(Goods).where(Goods.partner_id == partner_id)
    if active_only:
        stmt = stmt.where(Goods.active.is_(True))
    return list(session.scalars(stmt.order_by(Goods.sku)))


def goods_by_sku(session: Session, partner_id: int, skus: list[str]) -> dict[str, Goods]:
    rows = session.scalars(select(Goods).where(Goods.partner_id == partner_id, Goods.sku.in_(skus)))
    return {g.sku: g for g in rows}


def get_goods(session: Session, goods_id: int) -> Goods:
    goods = session.get(Goods, goods_id)
    if goods is None:
        raise NotFound()
    return goods


def take_stock(session: Session, goods_id: int, qty: int) -> None:
    """Decrement stock by `qty` if at least that much is left; out_of_stock (409) otherwise."""
    if qty <= 0:
        raise ValidationFailed(details={"fields": {"qty": ["positive"]}})
    result = session.execute(
        update(_goods)
        .where(_goods.c.id == goods_id, _goods.c.stock >= qty)
        .values(stock=_goods.c.stock - qty)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("out_of_stock", details={"goods_id": goods_id})
    _expire(session, goods_id)


def restore_stock(session: Session, goods_id: int, qty: int) -> None:
    """Put `qty` back (a refund, a void, an expired authorisation)."""
    if qty > 0:
        session.execute(
            update(_goods).where(_goods.c.id == goods_id).values(stock=_goods.c.stock + qty)
        )
        _expire(session, goods_id)


def _expire(session: Session, goods_id: int) -> None:
    obj = session.identity_map.get(identity_key(Goods, goods_id))
    if obj is not None:
        session.expire(obj, ["stock"])
