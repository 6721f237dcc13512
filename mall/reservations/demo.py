"""The demo county's points goods and a couple of open reservations (mall.demo.builder).

Every supermarket gets a few goods for points; two rated households of the first township
reserve a towel there. Their pickup codes go into the manifest under `reservations`, and the
goods under `catalog`, so a tester can walk the pickup at the cashier at once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mall.catalog.services import create_goods
from mall.partners.models import Partner
from mall.payments.services import ItemRequest, available_balances
from mall.regions.models import Region
from mall.reservations.services import format_code, reserve
from mall.subjects.models import CreditSubject

GOODS = [
    # sku, name, points, settlement fen, stock, min level rank
    ("TOWEL", "毛巾", 5, 800, 50, None),
    ("SOAP", "洗衣皂", 3, 300, 40, None),
    ("SALT", "食盐", 2, 200, 60, None),
    ("RICE5", "大米5斤", 12, 2500, 10, 4),
]


def build_reservations(session: Session, manifest: Any, county: Region) -> None:
    shops = list(
        session.scalars(
            select(Partner)
            .where(Partner.county_id == county.id, Partner.category == "supermarket")
            .order_by(Partner.id)
        )
    )
    for shop in shops:
        for sku, name, points, fen, stock, rank in GOODS:
            create_goods(
                session,
                shop,
                sku=sku,
                name=name,
                points_price=points,
                settlement_price_fen=fen,
                stock=stock,
                min_level_rank=rank,
            )
            manifest.catalog.append(
                {"partner_id": shop.id, "sku": sku, "name": name, "points_price": points}
            )
    booked: list[dict[str, Any]] = []
    if shops:
        shop = shops[0]
        refs = {h["ref"]: h for h in manifest.households if h.get("level") in ("3", "4", "5")}
        candidates = session.scalars(
            select(CreditSubject)
            .where(CreditSubject.ref.in_(list(refs)), CreditSubject.township_id == shop.township_id)
            .order_by(CreditSubject.id)
        )
        for subject in candidates:
            if len(booked) == 2:
                break
            if available_balances(session, subject)[1] < 5:
                continue
            r = reserve(session, subject, shop.id, [ItemRequest("TOWEL", 1)])
            booked.append(
                {
                    "reservation_id": r.public_id,
                    "household_ref": subject.ref,
                    "phone": refs[subject.ref]["phone"],
                    "partner_id": shop.id,
                    "pickup_code": r.pickup_code,
                    "pickup_code_display": format_code(r.pickup_code),
                }
            )
    manifest.reservations = booked
