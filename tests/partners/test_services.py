"""mall.partners.services.update_partner: the whitelisted, audited partner edit."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from mall.audit.models import AuditEntry
from mall.errors import Conflict, NotFound, ValidationFailed
from mall.partners.models import Partner
from mall.partners.services import create_partner, update_partner
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


def test_a_partner_name_is_unique_in_its_township(session: Session) -> None:
    c = make_county(session)
    first = make_partner(session, c.townships[0], name="龙场信用超市")
    with pytest.raises(Conflict) as exc:
        create_partner(session, township=c.townships[0], name=" 龙场信用超市 ", category="bank")
    assert exc.value.details == {
        "fields": {"name": ["a partner of this name exists in the township"]}
    }
    # Another township may have a shop of the same name.
    make_partner(session, c.townships[1], name="龙场信用超市")
    with pytest.raises(ValidationFailed):
        create_partner(session, township=c.townships[0], name="  ", category="bank")
    admin = make_user(session, "township_admin", c.townships[0])
    second = make_partner(session, c.townships[0], name="新寨信用超市")
    with pytest.raises(Conflict):
        update_partner(session, admin, second, {"name": "龙场信用超市", "address": "新址"})
    assert (second.name, second.address) == ("新寨信用超市", "")  # nothing of the edit kept
    update_partner(session, admin, first, {"name": "龙场信用超市", "address": "街上"})
    assert first.address == "街上"  # its own name is no conflict
    names = session.scalars(select(Partner.name).where(Partner.township_id == c.townships[0].id))
    assert sorted(names) == ["新寨信用超市", "龙场信用超市"]
