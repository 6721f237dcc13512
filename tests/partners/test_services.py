"""mall.partners.services.update_partner: the whitelisted, audited partner edit."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from mall.audit.models import AuditEntry
from mall.errors import NotFound, ValidationFailed
from mall.partners.services import update_partner
from mall.security.crypto import sealer
from tests.factories import make_county, make_partner, make_user


def test_edit_is_whitelisted_and_audited_with_before_and_after(session: Session) -> None:
    c = make_county(session)
    admin = make_user(session, "township_admin", c.townships[0])
    partner = make_partner(session, c.townships[0], name="老店")
    update_partner(
        session,
        admin,
        partner,
        {"name": "  新店 ", "accepts_points": True, "settlement": {"payee": "新店"}},
    )
    assert (partner.name, partner.accepts_points) == ("新店", True)
    entry = session.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "partner.update", AuditEntry.object_id == str(partner.id)
        )
    ).one()
    assert entry.before is not None
    assert entry.after is not None
    assert (entry.before["name"], entry.after["name"]) == ("老店", "新店")
    assert entry.after["settlement"] == {"payee": "新店"}
    for bad in ({"township_id": c.townships[1].id}, {"name": " "}, {"category": "casino"}):
        with pytest.raises(ValidationFailed):
            update_partner(session, admin, partner, bad)
    assert partner.township_id == c.townships[0].id


def test_a_new_phone_is_sealed_and_masked_an_empty_one_changes_nothing(
    session: Session,
) -> None:
    c = make_county(session)
    admin = make_user(session, "township_admin", c.townships[0])
    partner = make_partner(session, c.townships[0])
    update_partner(session, admin, partner, {"contact_phone": "13912345678"})
    assert partner.contact_phone_masked == "139****5678"
    assert partner.contact_phone_enc is not None
    assert sealer().open(partner.contact_phone_enc, "phone") == "13912345678"
    update_partner(session, admin, partner, {"contact_phone": ""})
    assert partner.contact_phone_masked == "139****5678"
    entry = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "partner.update").order_by(AuditEntry.id)
    ).first()
    assert entry is not None
    assert "13912345678" not in str(entry.after)  # the log keeps the masked phone only


def test_another_townships_partner_is_not_found(session: Session) -> None:
    c = make_county(session)
    admin = make_user(session, "township_admin", c.townships[0])
    theirs = make_partner(session, c.townships[1])
    with pytest.raises(NotFound):
        update_partner(session, admin, theirs, {"name": "x"})
