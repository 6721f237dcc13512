"""Business entities, collectives and villages: USCC validation and sealing, one collective
per village, ratings by kind, wallets only where the region allows, the API."""

from __future__ import annotations

from datetime import date

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from mall.codes.services import sign_dynamic_code, verify_code
from mall.entities import services as entities
from mall.errors import Conflict, Forbidden, ValidationFailed
from mall.ratings import services as ratings
from mall.subjects import services
from mall.subjects.models import CreditSubject
from mall.subjects.services import MemberInput
from tests.factories import County, make_county, make_user
from tests.helpers import staff_headers

USCC = "91350100M000100Y43"  # a published example code with a valid check character


def _business(session: Session, c: County, uscc: str = USCC) -> CreditSubject:
    return entities.create_business(
        session,
        village=c.villages[0],
        name="龙场镇建华家庭农场",
        uscc=uscc,
        business_type="family_farm",
        legal_rep="张建华",
        members=[MemberInput("李秀英", "成员")],
    )


def test_uscc_check_character() -> None:
    assert entities.validate_uscc(" 91350100m000100y43 ") == USCC
    for bad in (
        "91350100M000100Y44",
        "91350100M000100Y4",
        "9135010OM000100Y43",
        "91ABCDEFM000100Y43",
    ):
        with pytest.raises(ValidationFailed):
            entities.validate_uscc(bad)
    body = "91520221MA6H12345"
    assert len(entities.validate_uscc(body + entities.uscc_check_char(body))) == 18


def test_business_is_sealed_masked_and_found_by_code(session: Session) -> None:
    c = make_county(session)
    b = _business(session, c)
    raw = (
        session.execute(
            text("SELECT * FROM credit_subjects WHERE id = :id"),
            {"id": b.id},
        )
        .mappings()
        .one()
    )
    assert not any(USCC in str(v) for v in raw.values())
    assert raw["id_number_masked"] == "9135**********Y43"[:4] + "*" * 10 + "0Y43"
    members = session.execute(
        text("SELECT name_enc, name_masked, relation FROM subject_members WHERE subject_id = :id"),
        {"id": b.id},
    ).all()
    assert {(m.name_masked, m.relation) for m in members} == {
        ("张*华", "法定代表人"),
        ("李*英", "成员"),
    }
    assert not any("张建华" in m.name_enc for m in members)
    assert entities.find_by_uscc(session, USCC.lower()) is b
    # The blind index is under its own purpose: an ID-number search does not match it.
    assert services.find_by_id_number(session, USCC) is None
    assert services.plain_value(b, "id_number") == USCC
    with pytest.raises(Conflict):
        _business(session, c)


def test_one_collective_and_village_subject_per_village(session: Session) -> None:
    c = make_county(session)
    collective, village = entities.ensure_village_subjects(session, c.villages[0])
    assert (collective.kind, village.kind) == ("collective", "village")
    assert entities.ensure_village_subjects(session, c.villages[0]) == (collective, village)
    with pytest.raises(Conflict):
        entities.create_collective(session, village=c.villages[0])
    with pytest.raises(ValidationFailed):
        entities.create_collective(session, village=c.townships[0])


def test_rating_schemes_follow_the_kind(session: Session) -> None:
    c = make_county(session)
    b = _business(session, c)
    collective, village = entities.ensure_village_subjects(session, c.villages[0])
    day = date(2026, 3, 2)
    r = ratings.draft_rating(session, None, b, ratings.ScoreInput(score=85), today=day)
    assert (r.scheme_code, r.level_code) == ("business_aaa_d", "AA")
    r2 = ratings.draft_rating(session, None, collective, ratings.ScoreInput(score=50), today=day)
    assert (r2.scheme_code, r2.level_code) == ("collective_aaa_b", "B")
    with pytest.raises(ValidationFailed):  # credit villages go through mall.villages
        ratings.draft_rating(session, None, village, ratings.ScoreInput(score=90), today=day)
    ratings.post_notice(session, None, r, today=day)
    ratings.activate(session, [r], date(2026, 3, 10))
    assert b.level_code == "AA"
    info = ratings.level_info(session, b, date(2026, 3, 10))
    assert info is not None
    assert info["rank"] == 5


def test_wallets_and_codes_only_where_the_region_allows(session: Session) -> None:
    c = make_county(session)
    b = _business(session, c)
    collective, _ = entities.ensure_village_subjects(session, c.villages[0])
    assert not entities.may_use_wallets(session, b)
    with pytest.raises(Forbidden):
        entities.entity_wallets(session, b)
    code = sign_dynamic_code(session, b).code
    with pytest.raises(Forbidden) as exc:
        verify_code(session, code)
    assert exc.value.code == "holder_suspended"
    c.county.settings = {"business_entities_use_wallets": True}
    session.flush()
    assert entities.entity_wallets(session, b).integrity.kind == "household_integrity"
    assert verify_code(session, code).subject is b
    assert not entities.may_use_wallets(session, collective)


def test_entities_api(client: FlaskClient, session: Session) -> None:
    c = make_county(session)
    town_admin = make_user(session, "township_admin", c.townships[0])
    other = make_user(session, "township_admin", c.townships[1])
    h = staff_headers(town_admin)
    body = {
        "village_id": c.villages[0].id,
        "name": "双峦种养殖专业合作社",
        "uscc": USCC,
        "business_type": "cooperative",
        "legal_rep": "王德明",
        "members": [{"name": "刘春花", "relation": "社员"}],
    }
    resp = client.post("/api/v1/admin/entities/businesses", json=body, headers=h)
    assert resp.status_code == 201, resp.get_json()
    out = resp.get_json()
    assert out["uscc"] == "9135**********0Y43"
    assert out["kind"] == "business"
    assert USCC not in resp.get_data(as_text=True)
    bad = client.post("/api/v1/admin/entities/businesses", json={**body, "uscc": "123"}, headers=h)
    assert bad.status_code == 400
    found = client.get(f"/api/v1/admin/entities?kind=business&q={USCC}", headers=h).get_json()
    assert [i["ref"] for i in found["items"]] == [out["ref"]]
    assert (
        client.get(f"/api/v1/admin/entities/{out['ref']}", headers=staff_headers(other)).status_code
        == 404
    )
    resp = client.post(
        "/api/v1/admin/entities/collectives", json={"village_id": c.villages[0].id}, headers=h
    )
    assert resp.status_code == 201
    assert resp.get_json()["kind"] == "collective"
    spec = client.get("/openapi.json").get_json()
    assert "/api/v1/admin/entities/businesses" in spec["paths"]
    assert "/api/v1/admin/assessments/scores/{assessment_id}/pay" in spec["paths"]
