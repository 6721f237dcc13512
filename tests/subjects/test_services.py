"""Households: personal data sealed at rest, found by blind index, shown masked."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from mall.audit.models import AuditEntry
from mall.errors import Conflict, Forbidden, NotFound, ValidationFailed
from mall.subjects import services
from mall.subjects.queries import SubjectFilter, search
from tests.factories import make_county, make_household, make_user

ID_NUMBER = "34082319800101123X"
PHONE = "13812345678"


def test_raw_row_holds_no_plain_personal_data(session: Session) -> None:
    c = make_county(session)
    h = make_household(session, c.villages[0], name="张建华", phone=PHONE, id_number=ID_NUMBER)
    row = (
        session.execute(text("SELECT * FROM credit_subjects WHERE id = :id"), {"id": h.id})
        .mappings()
        .one()
    )
    flat = " ".join(str(v) for v in row.values())
    assert ID_NUMBER not in flat
    assert PHONE not in flat
    assert "张建华" not in flat
    members = session.execute(text("SELECT * FROM subject_members")).all()
    assert "李秀英" not in " ".join(str(v) for m in members for v in m)


def test_masked_forms(session: Session) -> None:
    c = make_county(session)
    h = make_household(session, c.villages[0], name="张建华", phone=PHONE, id_number=ID_NUMBER)
    assert h.name_masked == "张*华"
    assert h.phone_masked == "138****5678"
    assert h.id_number_masked == "3408**********123X"
    assert h.members[0].name_masked == "李*英"


def test_exact_search_by_phone_id_number_name_and_ref(session: Session) -> None:
    c = make_county(session)
    h = make_household(session, c.villages[0], name="王秀兰", phone=PHONE, id_number=ID_NUMBER)
    make_household(session, c.villages[0], name="李国强")
    admin = make_user(session, "township_admin", c.townships[0])
    for q in (PHONE, "138 1234 5678", ID_NUMBER.lower(), "王秀兰", h.ref):
        assert [s.id for s in search(session, admin, SubjectFilter(q=q))] == [h.id], q
    assert services.find_by_phone(session, PHONE) is h
    assert services.find_by_id_number(session, ID_NUMBER) is h


def test_duplicate_phone_or_id_number_conflicts(session: Session) -> None:
    c = make_county(session)
    make_household(session, c.villages[0], phone=PHONE, id_number=ID_NUMBER)
    with pytest.raises(Conflict):
        make_household(session, c.villages[1], phone=PHONE)
    with pytest.raises(Conflict):
        make_household(session, c.villages[1], id_number=ID_NUMBER)


@pytest.mark.parametrize(
    ("field", "value"),
    [("id_number", "12345"), ("phone", "2381234567"), ("phone", "1381234567x")],
)
def test_bad_personal_fields_are_refused(session: Session, field: str, value: str) -> None:
    c = make_county(session)
    with pytest.raises(ValidationFailed):
        make_household(session, c.villages[0], **{field: value})


def test_reveal_is_audited_and_role_limited(session: Session) -> None:
    c = make_county(session)
    h = make_household(session, c.villages[0], phone=PHONE)
    admin = make_user(session, "township_admin", c.townships[0])
    clerk = make_user(session, "village_clerk", c.villages[0])
    other = make_user(session, "township_admin", c.townships[1])
    assert services.reveal(session, admin, h, "phone", "回访核实") == PHONE
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "household.reveal")).one()
    assert entry.actor_user_id == admin.id
    assert entry.note == "回访核实"
    assert PHONE not in str(entry.after)
    with pytest.raises(Forbidden):
        services.reveal(session, clerk, h, "phone", "x")
    with pytest.raises(NotFound):
        services.reveal(session, other, h, "phone", "x")


def test_status_change_audits_before_and_after(session: Session) -> None:
    c = make_county(session)
    h = make_household(session, c.villages[0])
    admin = make_user(session, "township_admin", c.townships[0])
    services.change_status(session, admin, h, "frozen", "失信行为核查中")
    entry = session.scalars(select(AuditEntry).where(AuditEntry.object_id == h.ref)).one()
    assert entry.before["status"] == "active"
    assert entry.after["status"] == "frozen"
