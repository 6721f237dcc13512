"""The POS API under gunicorn, driven by the reference client (pos_adapter.client)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
import requests

from pos_adapter.client import CHINA, PosClient, PosError
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


def _township_benefit_value(live: LiveServer, township: str, month: str) -> tuple[int, int]:
    """(uses, value in fen) of the township's benefit report for `month`, as its admin sees."""
    admin = next(
        a
        for a in live.manifest["admins"]
        if a["role"] == "township_admin" and a["region"] == township
    )
    login = requests.post(
        live.url + "/api/v1/auth/admin/login",
        json={"username": admin["username"], "password": admin["password"]},
        timeout=10,
    )
    assert login.status_code == 200, login.text
    r = requests.get(
        live.url + "/api/v1/admin/reports/benefit-uses",
        params={"from": month, "to": month},
        headers={"Authorization": f"Bearer {login.json()['access_token']}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    rows = r.json()["items"]
    return sum(row["uses"] for row in rows), sum(row["value_fen"] for row in rows)


def test_a_benefit_use_needs_the_pin_and_is_worth_the_benefits_value(
    live_server: LiveServer,
) -> None:
    """Issue 19, break 3: a hospital till sent a card code without PIN and a bill of
    100,000,000 fen for the free health check; it was granted and the township's report
    showed it worth all of that. Now the card needs the PIN, and the use is worth what the
    benefit's terms give (its cap), in the answer and in the report."""
    manifest = live_server.manifest
    terminal = next(t for t in manifest["terminals"] if t["partner_category"] == "hospital")
    hospital = PosClient(live_server.url, terminal["terminal_id"], terminal["secret"])
    township = next(
        p["township"] for p in manifest["partners"] if p["partner_id"] == terminal["partner_id"]
    )
    holder = next(
        h for h in manifest["households"] if h.get("card_code") and h["level"] in ("4", "5")
    )
    code = holder["card_code"]
    seen = hospital.scan(code)
    assert seen["pin_required"] is True
    check_up = next(b for b in seen["benefits"] if b["kind"] == "free_item")
    month = datetime.now(UTC).astimezone(CHINA).strftime("%Y-%m")
    before = _township_benefit_value(live_server, township, month)
    with pytest.raises(PosError) as exc:
        hospital.benefit_use(code, check_up["benefit_id"], 100_000_000)
    assert (exc.value.status, exc.value.code) == (403, "pin_required")
    cap = check_up["cap_fen"]  # what the list says the check-up is worth at most
    assert cap is not None
    assert 0 < cap < 100_000_000
    with pytest.raises(PosError) as exc:
        hospital.benefit_use(code, check_up["benefit_id"], 100_000_001, pin=holder["pin"])
    assert (exc.value.status, exc.value.code) == (400, "validation_error")
    assert _township_benefit_value(live_server, township, month) == before
    use = hospital.benefit_use(code, check_up["benefit_id"], 100_000_000, pin=holder["pin"])
    assert (use["amount_fen"], use["discount_fen"]) == (100_000_000, cap)
    assert use["holder_ref"] == holder["ref"]
    after = _township_benefit_value(live_server, township, month)
    assert after == (before[0] + 1, before[1] + cap)
    with pytest.raises(PosError) as exc:  # once a year
        hospital.benefit_use(code, check_up["benefit_id"], 10_000, pin=holder["pin"])
    assert exc.value.code == "benefit_limit_reached"


def test_offline_verify_and_upload_exactly_once(live_server: LiveServer) -> None:
    till = _till(live_server, n=1)
    till.keys()
    holder = _card_holder(live_server)
    with pytest.raises(PosError) as exc:  # a card code offline needs the revocation list
        till.verify_offline(holder["card_code"])
    assert exc.value.code == "no_revocation_list"
    till.sync_revocations()
    # The holder's rate here, as the till saw it online (the server never honours more).
    rate = till.scan(holder["card_code"])["discount_rate_bp"]
    assert rate > 0
    sale = till.sell_offline(holder["card_code"], 10_000, rate)
    assert sale.integrity_discount_fen == 10_000 * rate // 10_000
    assert sale.revocation_list_version == till.revocation_list_version
    big = till.sell_offline(holder["card_code"], 1_000_000, rate)
    card_floor = till.keys()["offline_policy"]["card_floor_limit_fen"]
    # what is left of the card floor (20 yuan: no PIN offline), within the 50-yuan floor
    assert big.integrity_discount_fen == card_floor - sale.integrity_discount_fen
    with pytest.raises(PosError):
        till.verify_offline(holder["card_code"][:-3] + "abc")
    queued = list(till.offline_queue)
    results = till.upload_offline()
    assert [r["status"] for r in results] in (
        ["applied", "applied"],
        ["applied_short", "applied_short"],
        ["applied", "applied_short"],
    )
    assert {r.get("reason") for r in results} <= {None, "wallet_short"}
    till.offline_queue = queued  # upload the same sales again
    assert till.upload_offline() == results


def _other_card_holder(live: LiveServer, nth: int) -> dict[str, str]:
    """A rated card holder from the end of the demo list, left alone by the other tests
    (a card reported lost here stays lost for the rest of the session)."""
    rated = [h for h in live.manifest["households"] if h.get("card_code") and h["level"]]
    return rated[-nth]


def _after_issue(card_code: str, at: datetime) -> datetime:
    """`at`, or the moment after the card was issued if that is later (a sale cannot
    predate its card: `invalid_code` not_yet_valid)."""
    issued = datetime.fromtimestamp(
        jwt.decode(card_code, options={"verify_signature": False})["iat"], UTC
    )
    return max(at, issued + timedelta(seconds=1))


def _report_lost(live: LiveServer, holder: dict[str, str]) -> dict[str, str]:
    login = requests.post(
        live.url + "/api/v1/auth/farmer/login",
        json={"phone": holder["phone"], "pin": holder["pin"]},
        timeout=10,
    )
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    lost = requests.post(live.url + "/api/v1/me/card/report-lost", headers=headers, timeout=10)
    assert lost.status_code == 200, lost.text
    return lost.json()  # type: ignore[no-any-return]


def test_lost_card_cannot_be_spent_offline_by_a_till_that_synced(
    live_server: LiveServer,
) -> None:
    """Issue 19, break 4: the card is reported lost; a till that has been online since uploads
    a sale on it 'captured' 30 s before the report. Refused, and nothing is spent."""
    till = _till(live_server, "wholesale", 1)
    holder = _other_card_holder(live_server, 1)
    code = holder["card_code"]
    till.keys()
    lost = _report_lost(live_server, holder)
    revoked_at = datetime.fromisoformat(lost["revoked_at"])
    # The till is online after the report: scanning the card, it is told so.
    with pytest.raises(PosError) as exc:
        till.scan(code)
    assert exc.value.code == "invalid_code"
    # The attack: a record written by hand, dated 30 s before the report (the demo's card is
    # younger than that, perhaps: then just after it was issued).
    record = {
        "local_id": uuid.uuid4().hex,
        "code": code,
        "captured_at": _after_issue(code, revoked_at - timedelta(seconds=30)).isoformat(),
        "amount_fen": 40_000,
        "integrity_discount_fen": 2_000,
    }
    batch = {"batch_id": uuid.uuid4().hex, "records": [record]}
    [result] = till.request("POST", "/pos/v1/offline-batches", batch)["results"]
    assert (result["status"], result.get("code")) == ("rejected", "invalid_code"), result
    assert result["details"]["reason"] == "card_revoked_before_sync"
    day = revoked_at.astimezone(CHINA).date().isoformat()
    assert f"offline:{record['local_id']}" not in {p["external_ref"] for p in till.payments(day)}
    # A correct till back online syncs the revocation list: it refuses the card itself, and
    # a record stamped with that list is refused whatever its date.
    till.go_online()
    with pytest.raises(PosError) as exc:
        till.verify_offline(code)
    assert (exc.value.code, exc.value.details["reason"]) == ("invalid_code", "card_revoked")
    stamped = {
        **record,
        "local_id": uuid.uuid4().hex,
        "revocation_list_version": till.revocation_list_version,
    }
    batch = {"batch_id": uuid.uuid4().hex, "records": [stamped]}
    [result] = till.request("POST", "/pos/v1/offline-batches", batch)["results"]
    assert result["details"]["reason"] == "card_on_revocation_list"


def test_offline_discount_never_exceeds_the_online_rate(live_server: LiveServer) -> None:
    """Issue 19, break 5: 100% off offline where the same sale online gives the holder's
    rate. Applied at the rate; the excess is the partner's and not the township's."""
    till = _till(live_server, "wholesale", 1)
    holder = _other_card_holder(live_server, 2)
    code = holder["card_code"]
    online = till.quote(code, 5_000)
    rate = online["discount_rate_bp"]
    assert rate > 0
    at_rate = 5_000 * rate // 10_000
    record = {
        "local_id": uuid.uuid4().hex,
        "code": code,
        "captured_at": _after_issue(code, datetime.now(UTC) - timedelta(minutes=2)).isoformat(),
        "amount_fen": 5_000,
        "integrity_discount_fen": 5_000,
    }
    answer = till.request(
        "POST", "/pos/v1/offline-batches", {"batch_id": uuid.uuid4().hex, "records": [record]}
    )
    [result] = answer["results"]
    assert (result["status"], result["reason"]) == ("applied_short", "over_discount_rate")
    assert result["discount_rate_bp"] == rate
    assert result["integrity_discount_fen"] + result["shortfall_fen"] == at_rate
    assert result["overgrant_fen"] == 5_000 - at_rate
    payment = till.payment(result["payment_id"])
    assert payment["integrity_discount_fen"] + payment["offline_shortfall_fen"] == at_rate
    assert payment["needs_review"] is True


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
