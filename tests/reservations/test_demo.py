"""The demo county has points goods at every supermarket and two open reservations."""

from __future__ import annotations

from sqlalchemy.orm import Session

from mall.demo.builder import build
from mall.reservations.services import find_for_partner


def test_demo_reservations_in_the_manifest(session: Session) -> None:
    m = build(session, households_per_village=10)
    assert {g["sku"] for g in m.catalog} >= {"TOWEL", "SOAP"}
    assert len(m.reservations) == 2
    for entry in m.reservations:
        r = find_for_partner(session, entry["partner_id"], entry["pickup_code_display"])
        assert r.status == "open"
        assert r.public_id == entry["reservation_id"]
