"""Reference client of the POS API v1: a library and a CLI (`python -m pos_adapter.client`).

Vendors read this as the executable example of docs/pos-api.md:
- every request is signed (section 1) with a fresh timestamp and nonce, also on retries;
- a state-changing POST carries an Idempotency-Key, and a retry after a timeout, a dropped
  connection or a 5xx re-sends the *same* key and body, so the sale happens at most once;
- `/pos/v1/keys` is cached for its max-age, and the card revocation list is kept
  (`sync_revocations`); offline, `verify_offline` checks a code's Ed25519 signature and expiry
  against the cached keys and a card against the list, and `sell_offline` grants a discount
  only within the floor limits (the smaller one for card codes, whose PIN cannot be checked
  offline), stamping each sale with the list version it had; `upload_offline` sends the
  queued sales (section 6). Back online, the queue goes up before anything else: `request`
  uploads it first, and `go_online` uploads, then refreshes the keys and the list.

Only `requests` and PyJWT are needed; nothing here imports the server.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import jwt
import requests

SIGNED_WITHOUT_KEY = ("/pos/v1/scan", "/pos/v1/quote")
OFFLINE_BATCHES = "/pos/v1/offline-batches"
REVOCATIONS = "/pos/v1/card-revocations"
RETRY_STATUSES = frozenset({500, 502, 503, 504})
CHINA = timezone(timedelta(hours=8))


class PosError(Exception):
    """An error answer of the API: `status`, the stable `code`, `message` and `details`."""

    def __init__(self, status: int, code: str, message: str = "", details: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.details = status, code, message, details or {}


def sign(secret: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of the five-line canonical string."""
    canonical = "\n".join(
        (method.upper(), path, timestamp, nonce, hashlib.sha256(body).hexdigest())
    )
    return hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()


@dataclass
class OfflineSale:
    local_id: str
    code: str
    captured_at: str
    amount_fen: int
    integrity_discount_fen: int
    holder_ref: str  # kept by the till, not uploaded
    revocation_list_version: int | None = None


# What the till keeps to itself of a queued sale; the rest is the uploaded record.
_LOCAL_ONLY = ("holder_ref",)


@dataclass
class PosClient:
    base_url: str
    terminal_id: str
    secret: str
    timeout: float = 10.0
    retries: int = 3
    backoff: float = 0.2
    http: requests.Session = field(default_factory=requests.Session)
    _keys: dict[str, Any] | None = None
    _keys_until: float = 0.0
    offline_queue: list[OfflineSale] = field(default_factory=list)
    _offline_granted: dict[tuple[str, str], int] = field(default_factory=dict)
    _offline_card_granted: dict[tuple[str, str], int] = field(default_factory=dict)
    # The card revocation list as last fetched (`sync_revocations`): None until then.
    revocation_list_version: int | None = None
    revoked_cards: set[str] = field(default_factory=set)

    # ------------------------------------------------------------ transport

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        idempotency_key: str | None = None,
        raw: bool = False,
    ) -> Any:
        """Send a signed request; retry transport failures and 5xx with the same key.

        Sales queued offline go up first (`upload_offline`): the server judges an offline
        record of a card reported lost against the terminal's last contact before the
        upload, so a till that talks to the server before uploading can lose honest sales.
        A failed upload keeps the queue and does not stop this request."""
        if self.offline_queue and path != OFFLINE_BATCHES:
            with contextlib.suppress(PosError, requests.RequestException):
                self.upload_offline()
        data = b"" if body is None else json.dumps(body, ensure_ascii=False).encode()
        key = None
        if method == "POST" and not path.startswith(SIGNED_WITHOUT_KEY):
            key = idempotency_key or uuid.uuid4().hex
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * (2 ** (attempt - 1)))
            ts, nonce = str(int(time.time())), secrets.token_urlsafe(18)
            headers = {
                "X-Terminal-Id": self.terminal_id,
                "X-Timestamp": ts,
                "X-Nonce": nonce,
                "X-Signature": sign(self.secret, method, path, ts, nonce, data),
                "Content-Type": "application/json",
                "Accept-Language": "zh-CN",
            }
            if key:
                headers["Idempotency-Key"] = key
            try:
                resp = self.http.request(
                    method, self.base_url + path, data=data, headers=headers, timeout=self.timeout
                )
            except (requests.Timeout, requests.ConnectionError) as exc:
                last = exc
                continue
            if resp.status_code in RETRY_STATUSES:
                last = PosError(resp.status_code, "server_error", resp.text[:200])
                continue
            if resp.status_code >= 400:
                try:
                    err = resp.json()["error"]
                except (ValueError, KeyError, TypeError):
                    raise PosError(resp.status_code, "http_error", resp.text[:200]) from None
                raise PosError(resp.status_code, err["code"], err["message"], err.get("details"))
            return resp if raw else resp.json()
        assert last is not None
        raise last

    # ------------------------------------------------------------ endpoints

    def scan(self, code: str) -> dict[str, Any]:
        return self.request("POST", "/pos/v1/scan", {"code": code})

    def quote(
        self,
        code: str,
        amount_fen: int,
        items: list[dict[str, Any]] | None = None,
        use_integrity: bool = True,
    ) -> dict[str, Any]:
        body = {
            "code": code,
            "amount_fen": amount_fen,
            "items": items or [],
            "use_integrity": use_integrity,
        }
        return self.request("POST", "/pos/v1/quote", body)

    def pay(
        self,
        code: str,
        amount_fen: int,
        *,
        items: list[dict[str, Any]] | None = None,
        use_integrity: bool = True,
        capture: bool = True,
        pin: str | None = None,
        external_ref: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "code": code,
            "amount_fen": amount_fen,
            "items": items or [],
            "use_integrity": use_integrity,
            "capture": capture,
        }
        if pin is not None:
            body["pin"] = pin
        if external_ref is not None:
            body["external_ref"] = external_ref
        return self.request("POST", "/pos/v1/payments", body, idempotency_key=idempotency_key)

    def payment(self, payment_id: str) -> dict[str, Any]:
        return self.request("GET", f"/pos/v1/payments/{payment_id}")

    def capture(self, payment_id: str, amount_fen: int | None = None) -> dict[str, Any]:
        body = {} if amount_fen is None else {"amount_fen": amount_fen}
        return self.request("POST", f"/pos/v1/payments/{payment_id}/capture", body)

    def void(self, payment_id: str) -> dict[str, Any]:
        return self.request("POST", f"/pos/v1/payments/{payment_id}/void")

    def refund(
        self,
        payment_id: str,
        amount_fen: int | None = None,
        items: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if amount_fen is not None:
            body["amount_fen"] = amount_fen
        if items:
            body["items"] = items
        return self.request("POST", f"/pos/v1/payments/{payment_id}/refunds", body)

    def payments(self, business_date: str) -> list[dict[str, Any]]:
        """Every payment of the day, following the keyset cursor."""
        out: list[dict[str, Any]] = []
        cursor = None
        while True:
            path = f"/pos/v1/payments?business_date={business_date}"
            if cursor:
                path += f"&cursor={cursor}"
            page = self.request("GET", path)
            out += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                return out

    def statement(self, business_date: str, csv: bool = False) -> Any:
        path = f"/pos/v1/statements/{business_date}" + ("?format=csv" if csv else "")
        return self.request("GET", path, raw=True).text if csv else self.request("GET", path)

    def catalog(self) -> list[dict[str, Any]]:
        return self.request("GET", "/pos/v1/catalog")["items"]

    def benefit_use(
        self,
        code: str,
        benefit_id: int,
        amount_fen: int | None = None,
        *,
        pin: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Record a benefit granted. `amount_fen` is the bill it applies to (the server works
        out what the benefit is worth: `discount_fen`); a card code needs the household
        `pin`, as for a payment."""
        body: dict[str, Any] = {"code": code, "benefit_id": benefit_id, "amount_fen": amount_fen}
        if pin is not None:
            body["pin"] = pin
        return self.request("POST", "/pos/v1/benefit-uses", body, idempotency_key=idempotency_key)

    # ------------------------------------------------------------ offline

    def keys(self, *, force: bool = False) -> dict[str, Any]:
        """`GET /pos/v1/keys` (public), cached for the Cache-Control max-age."""
        if not force and self._keys is not None and time.monotonic() < self._keys_until:
            return self._keys
        resp = self.http.get(self.base_url + "/pos/v1/keys", timeout=self.timeout)
        resp.raise_for_status()
        max_age = 300
        for part in resp.headers.get("Cache-Control", "").split(","):
            name, _, value = part.strip().partition("=")
            if name == "max-age" and value.isdigit():
                max_age = int(value)
        self._keys = resp.json()
        self._keys_until = time.monotonic() + max_age
        return self._keys

    def sync_revocations(self) -> int:
        """Bring the card revocation list up to date (`GET /pos/v1/card-revocations`, signed:
        the server records which version this terminal was given). Returns the version."""
        while True:
            since = self.revocation_list_version or 0
            page = self.request("GET", f"{REVOCATIONS}?since_version={since}")
            self.revoked_cards.update(card["serial"] for card in page["cards"])
            self.revocation_list_version = int(page["version"])
            if not page["more"]:
                return self.revocation_list_version

    def go_online(self) -> list[dict[str, Any]]:
        """What a till does when its connection comes back, in this order: upload the queue
        (before any other request), then refresh the keys and the revocation list. Returns
        the upload's results."""
        results = self.upload_offline()
        self.keys(force=True)
        self.sync_revocations()
        return results

    def verify_offline(self, code: str, *, now: datetime | None = None) -> dict[str, Any]:
        """Verify a code with the cached keys only: signature, algorithm and expiry, and a
        card code against the revocation list. Returns its claims; raises PosError
        (422 invalid_code / 410 code_expired)."""
        if self._keys is None:
            raise PosError(0, "no_cached_keys", "call keys() while online first")
        now = now or datetime.now(UTC)
        skew = int(self._keys["offline_policy"]["allowed_skew_seconds"])
        try:
            header = jwt.get_unverified_header(code)
            jwk = next(k for k in self._keys["keys"] if k["kid"] == header.get("kid"))
            claims = jwt.decode(
                code,
                jwt.PyJWK(jwk).key,
                algorithms=["EdDSA"],
                options={"verify_exp": False, "verify_iat": False},
            )
        except (jwt.PyJWTError, StopIteration, ValueError, TypeError):
            raise PosError(422, "invalid_code", "forged or unknown code") from None
        ts = now.timestamp()
        if claims.get("iat", 0) > ts + skew:
            raise PosError(422, "invalid_code", "not yet valid")
        if claims.get("k") == "d" and ts > claims.get("exp", 0) + skew:
            raise PosError(410, "code_expired", "code expired")
        if claims.get("k") == "c":
            if self.revocation_list_version is None:
                raise PosError(0, "no_revocation_list", "call sync_revocations() while online")
            if claims.get("card") in self.revoked_cards:
                raise PosError(422, "invalid_code", "card revoked", {"reason": "card_revoked"})
        return claims

    def sell_offline(
        self, code: str, amount_fen: int, discount_rate_bp: int, *, now: datetime | None = None
    ) -> OfflineSale:
        """Record an offline sale: the discount is `discount_rate_bp` of the amount (the
        holder's rate here, as a scan showed it while online: the server never honours more),
        capped by what is left of the household's floor limit today, and for a card code by
        what is left of the card floor (as far as this till knows), and queued for upload."""
        now = now or datetime.now(UTC)
        claims = self.verify_offline(code, now=now)
        policy = (self._keys or {})["offline_policy"]
        floor = int(policy["floor_limit_fen"])
        day = now.astimezone(CHINA).date().isoformat()
        holder = (claims["sub"], day)
        used = self._offline_granted.get(holder, 0)
        left = floor - used
        card = claims.get("k") == "c"
        if card:
            card_floor = int(policy.get("card_floor_limit_fen", floor))
            left = min(left, card_floor - self._offline_card_granted.get(holder, 0))
        granted = max(0, min(amount_fen * discount_rate_bp // 10000, left))
        self._offline_granted[holder] = used + granted
        if card:
            self._offline_card_granted[holder] = self._offline_card_granted.get(holder, 0) + granted
        sale = OfflineSale(
            local_id=uuid.uuid4().hex,
            code=code,
            captured_at=now.isoformat(),
            amount_fen=amount_fen,
            integrity_discount_fen=granted,
            holder_ref=claims["sub"],
            revocation_list_version=self.revocation_list_version,
        )
        self.offline_queue.append(sale)
        return sale

    def upload_offline(self, batch_id: str | None = None) -> list[dict[str, Any]]:
        """Upload queued sales; each comes back applied, applied_short or rejected. Records
        leave the queue only once answered (a repeat upload is harmless: exactly once)."""
        if not self.offline_queue:
            return []
        records = [
            {k: v for k, v in vars(s).items() if k not in _LOCAL_ONLY} for s in self.offline_queue
        ]
        answer = self.request(
            "POST", OFFLINE_BATCHES, {"batch_id": batch_id or uuid.uuid4().hex, "records": records}
        )
        answered = {r["local_id"] for r in answer["results"]}
        self.offline_queue = [s for s in self.offline_queue if s.local_id not in answered]
        return answer["results"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pos_adapter.client", description=__doc__)
    p.add_argument("--url", default=os.environ.get("POS_URL", "http://127.0.0.1:8000"))
    p.add_argument("--terminal", default=os.environ.get("POS_TERMINAL_ID"))
    p.add_argument(
        "--secret",
        default=os.environ.get("POS_TERMINAL_SECRET"),
        help="better: set POS_TERMINAL_SECRET",
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("keys")
    sub.add_parser("revocations")
    sub.add_parser("catalog")
    s = sub.add_parser("scan")
    s.add_argument("code")
    q = sub.add_parser("pay")
    q.add_argument("code")
    q.add_argument("amount_fen", type=int)
    q.add_argument("--pin")
    q.add_argument("--authorize-only", action="store_true")
    b = sub.add_parser("benefit-use")
    b.add_argument("code")
    b.add_argument("benefit_id", type=int)
    b.add_argument("--amount-fen", type=int, help="the bill the benefit applies to")
    b.add_argument("--pin")
    g = sub.add_parser("payment")
    g.add_argument("payment_id")
    r = sub.add_parser("refund")
    r.add_argument("payment_id")
    r.add_argument("--amount-fen", type=int)
    v = sub.add_parser("void")
    v.add_argument("payment_id")
    st = sub.add_parser("statement")
    st.add_argument("business_date")
    st.add_argument("--csv", action="store_true")
    args = p.parse_args(argv)
    client = PosClient(args.url, args.terminal or "", args.secret or "")
    try:
        if args.cmd == "keys":
            out: Any = client.keys()
        elif args.cmd == "revocations":
            version = client.sync_revocations()
            out = {"version": version, "serials": sorted(client.revoked_cards)}
        elif args.cmd == "catalog":
            out = client.catalog()
        elif args.cmd == "scan":
            out = client.scan(args.code)
        elif args.cmd == "pay":
            out = client.pay(
                args.code, args.amount_fen, pin=args.pin, capture=not args.authorize_only
            )
        elif args.cmd == "benefit-use":
            out = client.benefit_use(args.code, args.benefit_id, args.amount_fen, pin=args.pin)
        elif args.cmd == "payment":
            out = client.payment(args.payment_id)
        elif args.cmd == "refund":
            out = client.refund(args.payment_id, args.amount_fen)
        elif args.cmd == "void":
            out = client.void(args.payment_id)
        else:
            out = client.statement(args.business_date, csv=args.csv)
    except PosError as exc:
        print(
            json.dumps(
                {
                    "status": exc.status,
                    "code": exc.code,
                    "message": exc.message,
                    "details": exc.details,
                },
                ensure_ascii=False,
            ),
            file=sys.stderr,
        )
        return 1
    print(out if isinstance(out, str) else json.dumps(out, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
