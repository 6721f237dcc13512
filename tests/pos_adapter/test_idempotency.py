"""Idempotency-Key: required, replay of the first response, conflict, in progress, pruning."""

from __future__ import annotations

import json
from datetime import timedelta

from flask import Flask, request
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mall.clock import utcnow
from mall.payments.models import Payment
from pos_adapter import idempotency
from pos_adapter.models import PosIdempotencyKey
from tests.pos_adapter.conftest import Till, World


def _payments(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Payment)) or 0)


def test_key_required(till: Till, world: World, session: Session) -> None:
    body = {"code": world.code(session), "amount_fen": 1000}
    r = till.post("/pos/v1/payments", body, idempotent=False)
    assert (r.status_code, r.json["error"]["code"]) == (400, "idempotency_key_required")
    r = till.post("/pos/v1/payments", body, headers={"Idempotency-Key": "k" * 65})
    assert r.json["error"]["code"] == "idempotency_key_required"
    assert _payments(session) == 0


def test_replay_returns_first_response(till: Till, world: World, session: Session) -> None:
    body = {"code": world.code(session), "amount_fen": 10_000}
    first = till.post("/pos/v1/payments", body, key="sale-1")
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    again = till.post("/pos/v1/payments", body, key="sale-1")
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json == first.json
    assert _payments(session) == 1


def test_refusals_are_replayed_too(till: Till, world: World, session: Session) -> None:
    body = {"code": "garbage", "amount_fen": 100}
    first = till.post("/pos/v1/payments", body, key="bad-1")
    assert first.status_code == 422
    again = till.post("/pos/v1/payments", body, key="bad-1")
    assert (again.status_code, again.headers.get("Idempotent-Replayed")) == (422, "true")
    assert again.json == first.json


def test_conflict_on_other_body(till: Till, world: World, session: Session) -> None:
    code = world.code(session)
    assert (
        till.post("/pos/v1/payments", {"code": code, "amount_fen": 100}, key="k1").status_code
        == 201
    )
    r = till.post("/pos/v1/payments", {"code": code, "amount_fen": 200}, key="k1")
    assert (r.status_code, r.json["error"]["code"]) == (409, "idempotency_conflict")
    assert _payments(session) == 1


def test_keys_are_scoped_to_the_terminal(
    till: Till, other_till: Till, world: World, session: Session
) -> None:
    assert (
        till.post(
            "/pos/v1/payments", {"code": world.code(session), "amount_fen": 1}, key="same"
        ).status_code
        == 201
    )
    r = other_till.post(
        "/pos/v1/payments", {"code": world.code(session), "amount_fen": 1}, key="same"
    )
    assert r.status_code == 201
    assert "Idempotent-Replayed" not in r.headers


def test_in_progress(app: Flask, till: Till, world: World, session: Session) -> None:
    body = json.dumps({"code": world.code(session), "amount_fen": 100}).encode()
    with app.test_request_context("/pos/v1/payments", method="POST", data=body):
        digest = idempotency.request_hash(request)
    session.add(
        PosIdempotencyKey(
            terminal_id=world.terminal.id, key="busy", request_hash=digest, created_at=utcnow()
        )
    )
    session.commit()
    r = till.post("/pos/v1/payments", raw=body, key="busy")
    assert (r.status_code, r.json["error"]["code"]) == (409, "request_in_progress")
    # A first attempt that died long ago (no response after the lease) is taken over.
    row = session.scalar(select(PosIdempotencyKey).where(PosIdempotencyKey.key == "busy"))
    assert row is not None
    row.created_at = utcnow() - timedelta(minutes=5)
    session.commit()
    r = till.post("/pos/v1/payments", raw=body, key="busy")
    assert r.status_code == 201, r.json


def test_prune(till: Till, world: World, session: Session) -> None:
    till.post("/pos/v1/payments", {"code": world.code(session), "amount_fen": 1}, key="old")
    assert idempotency.prune_keys(session, now=utcnow() + timedelta(hours=24)) == 0
    assert idempotency.prune_keys(session, now=utcnow() + timedelta(hours=26)) == 1
