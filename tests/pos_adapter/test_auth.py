"""Request signing: each of the five 401 codes, tampering, replay, clock skew, last seen."""

from __future__ import annotations

import secrets
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from mall.clock import utcnow
from mall.partners.models import Partner, Terminal
from mall.partners.services import rotate_terminal_secret, set_terminal_active
from mall.security.crypto import sealer
from pos_adapter import auth
from pos_adapter.auth import canonical_string, sign
from pos_adapter.models import PosNonce
from pos_adapter.nonces import prune_nonces
from tests.pos_adapter.conftest import Till


def _headers(till: Till, method: str, path: str, body: bytes, **over: str) -> dict[str, str]:
    ts = over.pop("ts", str(int(time.time())))
    nonce = over.pop("nonce", secrets.token_urlsafe(16))
    h = {
        "X-Terminal-Id": till.terminal.terminal_id,
        "X-Timestamp": ts,
        "X-Nonce": nonce,
        "X-Signature": sign(till.secret, method, path, ts, nonce, body),
        "Content-Type": "application/json",
    }
    h.update(over)
    return h


def _code(resp: object) -> str:
    return resp.json["error"]["code"]  # type: ignore[attr-defined,no-any-return]


def test_canonical_string_is_the_five_lines() -> None:
    assert canonical_string("post", "/pos/v1/scan?a=1", "1700000000", "n" * 16, b"") == (
        "POST\n/pos/v1/scan?a=1\n1700000000\n" + "n" * 16 + "\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


def test_signed_request_passes(till: Till) -> None:
    assert till.get("/pos/v1/catalog").status_code == 200


def test_unknown_terminal(till: Till) -> None:
    body = b""
    h = _headers(till, "GET", "/pos/v1/catalog", body, **{"X-Terminal-Id": "TNOPE"})
    r = till.client.get("/pos/v1/catalog", headers=h)
    assert (r.status_code, _code(r)) == (401, "terminal_unknown")
    h.pop("X-Terminal-Id")
    r = till.client.get("/pos/v1/catalog", headers=h)
    assert (r.status_code, _code(r)) == (401, "terminal_unknown")


def test_disabled_terminal(till: Till, session: Session) -> None:
    set_terminal_active(session, till.terminal, False)
    session.commit()
    r = till.get("/pos/v1/catalog")
    assert (r.status_code, _code(r)) == (401, "terminal_disabled")


def test_skewed_clock(till: Till) -> None:
    for offset in (301, -301, 10_000):
        till.clock_offset = offset
        r = till.get("/pos/v1/catalog")
        assert (r.status_code, _code(r)) == (401, "stale_request"), offset
    till.clock_offset = 290
    assert till.get("/pos/v1/catalog").status_code == 200
    h = _headers(till, "GET", "/pos/v1/catalog", b"", ts="soon")
    r = till.client.get("/pos/v1/catalog", headers=h)
    assert (r.status_code, _code(r)) == (401, "stale_request")


def test_tampered_requests(till: Till) -> None:
    body = b'{"code": "x"}'
    h = _headers(till, "POST", "/pos/v1/scan", body)
    # body changed after signing
    r = till.client.post("/pos/v1/scan", data=b'{"code": "y"}', headers=h)
    assert (r.status_code, _code(r)) == (401, "bad_signature")
    # path changed (a query string appended)
    h = _headers(till, "GET", "/pos/v1/catalog", b"")
    r = till.client.get("/pos/v1/catalog?x=1", headers=h)
    assert (r.status_code, _code(r)) == (401, "bad_signature")
    # method changed
    h = _headers(till, "GET", "/pos/v1/catalog", b"")
    r = till.client.post("/pos/v1/catalog", headers=h)
    assert r.status_code in (401, 405)
    # uppercase hex, wrong secret, malformed nonce
    h = _headers(till, "GET", "/pos/v1/catalog", b"")
    h["X-Signature"] = h["X-Signature"].upper()
    assert _code(till.client.get("/pos/v1/catalog", headers=h)) == "bad_signature"
    ts, nonce = str(int(time.time())), secrets.token_urlsafe(16)
    h = _headers(till, "GET", "/pos/v1/catalog", b"", ts=ts, nonce=nonce)
    h["X-Signature"] = sign("0" * 64, "GET", "/pos/v1/catalog", ts, nonce, b"")
    assert _code(till.client.get("/pos/v1/catalog", headers=h)) == "bad_signature"
    for bad_nonce in ("short", "x" * 65, "has space in it 12345", "ünïcödé-nonce-1234"):
        h = _headers(till, "GET", "/pos/v1/catalog", b"", nonce=bad_nonce)
        r = till.client.get("/pos/v1/catalog", headers=h)
        assert (r.status_code, _code(r)) == (401, "bad_signature"), bad_nonce


def test_query_string_is_signed_as_sent(till: Till) -> None:
    r = till.get("/pos/v1/payments?business_date=2026-01-02&limit=5")
    assert r.status_code == 200, r.json


def test_replayed_nonce(till: Till) -> None:
    h = _headers(till, "GET", "/pos/v1/catalog", b"")
    assert till.client.get("/pos/v1/catalog", headers=h).status_code == 200
    r = till.client.get("/pos/v1/catalog", headers=h)
    assert (r.status_code, _code(r)) == (401, "replayed_request")


def test_failed_request_still_burns_its_nonce(till: Till) -> None:
    body = b'{"code": "not-a-code"}'
    h = _headers(till, "POST", "/pos/v1/scan", body)
    assert till.client.post("/pos/v1/scan", data=body, headers=h).status_code == 422
    r = till.client.post("/pos/v1/scan", data=body, headers=h)
    assert _code(r) == "replayed_request"


def test_nonce_of_another_terminal_is_independent(till: Till, other_till: Till) -> None:
    nonce = secrets.token_urlsafe(16)
    for t in (till, other_till):
        h = _headers(t, "GET", "/pos/v1/catalog", b"", nonce=nonce)
        assert t.client.get("/pos/v1/catalog", headers=h).status_code == 200


def test_rotated_secret(till: Till, session: Session) -> None:
    new = rotate_terminal_secret(session, till.terminal)
    session.commit()
    assert _code(till.get("/pos/v1/catalog")) == "bad_signature"
    till.secret = new
    assert till.get("/pos/v1/catalog").status_code == 200


def test_prune_and_last_seen(till: Till, session: Session) -> None:
    assert till.get("/pos/v1/catalog").status_code == 200
    session.refresh(till.terminal)
    seen = till.terminal.last_seen_at
    assert seen is not None
    assert till.get("/pos/v1/catalog").status_code == 200
    session.refresh(till.terminal)
    assert till.terminal.last_seen_at == seen  # at most once a minute
    count = session.scalar(select(func.count()).select_from(PosNonce))
    assert count
    assert count >= 2
    assert prune_nonces(session, now=utcnow() + timedelta(seconds=601)) >= 2
    assert session.scalar(select(func.count()).select_from(PosNonce)) == 0


def test_secret_never_in_responses_or_logs(till: Till, caplog: object) -> None:
    r = till.get("/pos/v1/catalog")
    assert till.secret not in r.get_data(as_text=True)


def test_reads_may_use_the_terminal_row_briefly_writes_never(
    till: Till, world: object, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scan may authenticate from the terminal row as read up to HOT_CACHE_SECONDS ago;
    a payment reads it afresh, so a terminal disabled elsewhere (another worker: here a bare
    UPDATE no ORM event of this process sees) can move no money from that moment."""
    now = [1000.0]
    monkeypatch.setattr(auth._recent_terminals, "timer", lambda: now[0])
    code = world.code(session)  # type: ignore[attr-defined]
    # The first scan records last_seen_at and drops the entry; the second caches the row.
    # expire_all(): here requests share the test's session and its loaded rows; in production
    # each request has a new session, which reads the database (or the cache) afresh.
    for _ in range(2):
        assert till.post("/pos/v1/scan", {"code": code}).status_code == 200
        session.expire_all()
    terminals = Terminal.__table__
    session.execute(
        update(terminals).where(terminals.c.id == till.terminal.id).values(active=False)
    )
    session.commit()
    session.expire_all()
    assert till.post("/pos/v1/scan", {"code": code}).status_code == 200  # cached, < 5 s
    session.expire_all()
    pay = till.post("/pos/v1/payments", {"code": code, "amount_fen": 1000})
    assert (pay.status_code, _code(pay)) == (401, "terminal_disabled")
    now[0] += 5.1
    r = till.post("/pos/v1/scan", {"code": code})
    assert (r.status_code, _code(r)) == (401, "terminal_disabled")


def test_a_terminal_disabled_through_the_service_is_refused_at_once(
    till: Till, world: object, session: Session
) -> None:
    code = world.code(session)  # type: ignore[attr-defined]
    assert till.post("/pos/v1/scan", {"code": code}).status_code == 200  # now cached
    set_terminal_active(session, till.terminal, False)
    session.commit()
    r = till.post("/pos/v1/scan", {"code": code})
    assert (r.status_code, _code(r)) == (401, "terminal_disabled")


def _changed_elsewhere(session: Session, table: Any, row_id: int, **values: Any) -> None:
    """A change made by another worker or host: a bare UPDATE, which no ORM event of this
    process sees, so this process's cache of the rows stays as it was."""
    session.execute(update(table).where(table.c.id == row_id).values(**values))
    session.commit()
    session.expire_all()


def _warm(till: Till, session: Session, code: str) -> None:
    # The first scan records last_seen_at and drops the entry; the second caches the rows.
    for _ in range(2):
        assert till.post("/pos/v1/scan", {"code": code}).status_code == 200
        session.expire_all()


def test_a_write_sees_a_partner_changed_elsewhere_at_once(
    till: Till, world: Any, session: Session
) -> None:
    """A write may authenticate from cached rows, but its transaction confirms them: a
    partner that stopped accepting integrity money a moment ago gives no discount."""
    code = world.code(session)
    _warm(till, session, code)
    assert till.post("/pos/v1/scan", {"code": code}).json["discount_rate_bp"] == 600
    _changed_elsewhere(session, Partner.__table__, world.partner.id, accepts_integrity=False)
    assert till.post("/pos/v1/scan", {"code": code}).json["discount_rate_bp"] == 600  # cached
    pay = till.post("/pos/v1/payments", {"code": code, "amount_fen": 10_000})
    assert pay.status_code == 201, pay.json
    assert pay.json["discount_rate_bp"] == 0
    assert pay.json["integrity_discount_fen"] == 0


def test_a_write_refused_for_a_partner_disabled_elsewhere(
    till: Till, world: Any, session: Session
) -> None:
    code = world.code(session)
    _warm(till, session, code)
    _changed_elsewhere(session, Partner.__table__, world.partner.id, active=False)
    pay = till.post("/pos/v1/payments", {"code": code, "amount_fen": 10_000})
    assert (pay.status_code, _code(pay)) == (401, "terminal_disabled")


def test_a_secret_rotated_elsewhere_takes_effect_at_once(
    till: Till, world: Any, session: Session
) -> None:
    """Cached rows never refuse a request their newer version accepts: the new secret works
    at once, for reads and writes, and the old one stops working for writes at once."""
    code = world.code(session)
    _warm(till, session, code)
    old, new = till.secret, "n" * 43
    sealed = sealer().seal(new, "terminal")
    _changed_elsewhere(session, Terminal.__table__, till.terminal.id, secret_enc=sealed)
    till.secret = old
    pay = till.post("/pos/v1/payments", {"code": code, "amount_fen": 1_000})
    assert (pay.status_code, _code(pay)) == (401, "bad_signature")
    till.secret = new
    assert till.post("/pos/v1/scan", {"code": code}).status_code == 200
    assert till.post("/pos/v1/payments", {"code": code, "amount_fen": 1_000}).status_code == 201


def test_a_terminal_enabled_again_elsewhere_may_scan_at_once(
    till: Till, world: Any, session: Session
) -> None:
    code = world.code(session)
    _changed_elsewhere(session, Terminal.__table__, till.terminal.id, active=False)
    r = till.post("/pos/v1/scan", {"code": code})  # now cached: disabled
    assert (r.status_code, _code(r)) == (401, "terminal_disabled")
    _changed_elsewhere(session, Terminal.__table__, till.terminal.id, active=True)
    assert till.post("/pos/v1/scan", {"code": code}).status_code == 200


def test_a_repeated_payment_replays_after_its_terminal_rows_changed(
    till: Till, world: Any, session: Session
) -> None:
    code = world.code(session)
    _warm(till, session, code)
    first = till.post("/pos/v1/payments", {"code": code, "amount_fen": 1_000}, key="K-1")
    assert first.status_code == 201
    _changed_elsewhere(session, Terminal.__table__, till.terminal.id, name="收银台 2")
    again = till.post("/pos/v1/payments", {"code": code, "amount_fen": 1_000}, key="K-1")
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json == first.json
