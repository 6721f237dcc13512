"""The staff API's optional Idempotency-Key (mall/auth/idempotency.py): a retried write
answers what the first did and does nothing else."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mall.auth.idempotency import RETENTION, prune_keys
from mall.auth.models import StaffIdempotencyKey
from mall.clock import utcnow
from mall.extensions import db
from mall.partners.models import Partner, Terminal
from mall.regions.models import Region
from mall.users.models import User
from tests.factories import make_county, make_partner, make_user
from tests.helpers import staff_headers

PARTNERS = "/api/v1/admin/partners"


@pytest.fixture
def town_admin(session: Session) -> tuple[Region, User]:
    town = make_county(session).townships[0]
    admin = make_user(session, "township_admin", town)
    session.commit()
    return town, admin


def _partners(session: Session, name: str) -> int:
    return int(session.scalar(select(func.count()).where(Partner.name == name)) or 0)


def test_a_retry_answers_the_first_answer_and_creates_nothing(
    client: FlaskClient, session: Session, town_admin: tuple[Region, User]
) -> None:
    town, admin = town_admin
    h = {**staff_headers(admin), "Idempotency-Key": "create-shop-1"}
    body = {"township_id": town.id, "name": "龙场信用超市", "category": "supermarket"}
    first = client.post(PARTNERS, json=body, headers=h)
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    again = client.post(PARTNERS, json=body, headers=h)
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json == first.json
    assert again.content_type == first.content_type
    assert _partners(session, "龙场信用超市") == 1
    # The same key with another body is another request: refused, not replayed.
    other = client.post(PARTNERS, json={**body, "name": "新寨信用超市"}, headers=h)
    assert other.status_code == 409
    assert other.json["error"]["code"] == "idempotency_conflict"
    assert _partners(session, "新寨信用超市") == 0
    # Without a key, a repeat is a new request (and the name is taken).
    assert client.post(PARTNERS, json=body, headers=staff_headers(admin)).status_code == 409


def test_a_refusal_is_not_kept_so_a_corrected_retry_runs(
    client: FlaskClient, session: Session, town_admin: tuple[Region, User]
) -> None:
    town, admin = town_admin
    h = {**staff_headers(admin), "Idempotency-Key": "create-shop-2"}
    bad = client.post(
        PARTNERS, json={"township_id": town.id, "name": "店", "category": "casino"}, headers=h
    )
    assert bad.status_code == 400
    good = client.post(
        PARTNERS, json={"township_id": town.id, "name": "店", "category": "bank"}, headers=h
    )
    assert good.status_code == 201, good.json
    assert "Idempotent-Replayed" not in good.headers


def test_keys_belong_to_one_account(client: FlaskClient, session: Session) -> None:
    town = make_county(session).townships[0]
    one = make_user(session, "township_admin", town)
    two = make_user(session, "township_admin", town)
    session.commit()
    body = {"township_id": town.id, "name": "龙场卫生院", "category": "hospital"}
    key = {"Idempotency-Key": "same-key"}
    assert (
        client.post(PARTNERS, json=body, headers={**staff_headers(one), **key}).status_code == 201
    )
    theirs = client.post(PARTNERS, json=body, headers={**staff_headers(two), **key})
    assert theirs.status_code == 409  # run anew for the other account: the name is taken
    assert theirs.json["error"]["code"] == "conflict"


@pytest.mark.parametrize("key", ["", "x" * 65, "tab\there"])
def test_a_malformed_key_is_refused_before_anything_runs(
    client: FlaskClient, session: Session, town_admin: tuple[Region, User], key: str
) -> None:
    town, admin = town_admin
    resp = client.post(
        PARTNERS,
        json={"township_id": town.id, "name": "店", "category": "bank"},
        headers={**staff_headers(admin), "Idempotency-Key": key},
    )
    assert resp.status_code == 400
    assert resp.json["error"]["code"] == "validation_error"
    assert "Idempotency-Key" in resp.json["error"]["details"]["fields"]
    assert _partners(session, "店") == 0


def test_reads_ignore_the_key(
    client: FlaskClient, session: Session, town_admin: tuple[Region, User]
) -> None:
    _, admin = town_admin
    h = {**staff_headers(admin), "Idempotency-Key": "read"}
    assert client.get(PARTNERS, headers=h).status_code == 200
    assert session.scalar(select(func.count()).select_from(StaffIdempotencyKey)) == 0


def test_a_terminal_secret_is_replayed_but_sealed_at_rest(
    client: FlaskClient, session: Session
) -> None:
    town = make_county(session).townships[0]
    admin = make_user(session, "township_admin", town)
    partner = make_partner(session, town)
    session.commit()
    h = {**staff_headers(admin), "Idempotency-Key": "till-1"}
    path = f"{PARTNERS}/{partner.id}/terminals"
    first = client.post(path, json={"name": "1号收银台"}, headers=h)
    assert first.status_code == 201, first.json
    secret = first.json["secret"]
    again = client.post(path, json={"name": "1号收银台"}, headers=h)
    assert again.json["secret"] == secret
    assert session.scalar(select(func.count()).select_from(Terminal)) == 1
    stored = session.scalars(select(StaffIdempotencyKey.response_sealed)).one()
    assert stored is not None
    assert secret not in stored


def test_keys_are_pruned_after_the_retention(
    client: FlaskClient, session: Session, town_admin: tuple[Region, User]
) -> None:
    town, admin = town_admin
    h = {**staff_headers(admin), "Idempotency-Key": "old"}
    body = {"township_id": town.id, "name": "老店", "category": "bank"}
    assert client.post(PARTNERS, json=body, headers=h).status_code == 201
    assert prune_keys(session) == 0
    row = session.scalars(select(StaffIdempotencyKey)).one()
    row.created_at = utcnow() - RETENTION - timedelta(minutes=1)
    session.commit()
    assert prune_keys(session) == 1
    session.commit()
    # The key is free again: the request runs anew (and meets the partner it made).
    assert client.post(PARTNERS, json=body, headers=h).status_code == 409


@pytest.mark.postgres_only
def test_a_key_sent_six_times_at_once_runs_once(committed: Flask) -> None:
    session = db.session()
    town = make_county(session).townships[0]
    admin = make_user(session, "township_admin", town)
    session.commit()
    h = {**staff_headers(admin), "Idempotency-Key": "at-once"}
    body = {"township_id": town.id, "name": "同时店", "category": "bank"}

    def call(_: int) -> tuple[int, str]:
        resp = committed.test_client().post(PARTNERS, json=body, headers=h)
        code = (resp.json or {}).get("error", {}).get("code", "")
        return resp.status_code, code

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(call, range(6)))
    # One ran; each other one waited on the key, then answered from it: the first answer
    # replayed, or "in progress" when it came between the work's commit and the answer's.
    assert (201, "") in outcomes
    assert all(o in {(201, ""), (409, "request_in_progress")} for o in outcomes), outcomes
    assert _partners(db.session(), "同时店") == 1
