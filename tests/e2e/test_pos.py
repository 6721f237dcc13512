"""The POS API under gunicorn, driven by the reference client (pos_adapter.client)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import requests

from pos_adapter.client import PosClient, PosError
from tests.live import LiveServer

pytestmark = pytest.mark.e2e


def _till(live: LiveServer, category: str = "supermarket", n: int = 0) -> PosClient:
    terminals = [t for t in live.manifest["terminals"] if t["partner_category"] == category]
    t = terminals[n]
    return PosClient(live.url, t["terminal_id"], t["secret"])


def _card_holder(live: LiveServer) -> dict[str, str]:
    return next(h for h in live.manifest["households"] if h.get("card_code") and h["level"])


def test_sale_refund_statement_through_the_client(live_server: LiveServer) -> None:
    till = _till(live_server)
    holder = _card_holder(live_server)
    code = holder["card_code"]
    seen = till.scan(code)
    assert seen["pin_required"] is True
    assert seen["holder"]["ref"] == holder["ref"]
    with pytest.raises(PosError) as exc:
        till.pay(code, 5_000)
    assert exc.value.code == "pin_required"
    key = uuid.uuid4().hex
    first = till.pay(code, 5_000, pin=holder["pin"], idempotency_key=key)
    # the till lost the answer and retries with the same key: the same payment comes back
    again = till.pay(code, 5_000, pin=holder["pin"], idempotency_key=key)
    assert again["payment_id"] == first["payment_id"]
    refund = till.refund(first["payment_id"], 2_000)
    assert refund["payment"]["refunded_amount_fen"] == 2_000
    day = first["business_date"]
    assert first["payment_id"] in [p["payment_id"] for p in till.payments(day)]
    statement = till.statement(day)
    assert statement["payments_count"] >= 1
    assert statement["closed"] is False
    assert "net_payable_fen" in till.statement(day, csv=True)
    # another partner's till cannot see it
    other = _till(live_server, "wholesale")
    with pytest.raises(PosError) as exc:
        other.payment(first["payment_id"])
    assert exc.value.code == "not_found"


def test_offline_verify_and_upload_exactly_once(live_server: LiveServer) -> None:
    till = _till(live_server, n=1)
    till.keys()
    holder = _card_holder(live_server)
    sale = till.sell_offline(holder["card_code"], 10_000, 1_000)
    assert sale.integrity_discount_fen == 1_000
    big = till.sell_offline(holder["card_code"], 1_000_000, 1_000)
    assert big.integrity_discount_fen == 4_000  # what is left of the 50-yuan floor limit
    with pytest.raises(PosError):
        till.verify_offline(holder["card_code"][:-3] + "abc")
    queued = list(till.offline_queue)
    results = till.upload_offline()
    assert [r["status"] for r in results] in (
        ["applied", "applied"],
        ["applied_short", "applied_short"],
        ["applied", "applied_short"],
    )
    till.offline_queue = queued  # upload the same sales again
    assert till.upload_offline() == results


def test_signed_errors_over_http(live_server: LiveServer) -> None:
    till = _till(live_server)
    bad = PosClient(live_server.url, till.terminal_id, "0" * 64, retries=0)
    with pytest.raises(PosError) as exc:
        bad.catalog()
    assert (exc.value.status, exc.value.code) == (401, "bad_signature")
    r = requests.post(live_server.url + "/pos/v1/scan", json={"code": "x"}, timeout=5)
    assert (r.status_code, r.json()["error"]["code"]) == (401, "terminal_unknown")
    assert datetime.now(UTC)  # the server's clock check passed for the good client above
    assert (
        "/pos/v1/payments"
        in requests.get(live_server.url + "/openapi.json", timeout=5).json()["paths"]
    )
