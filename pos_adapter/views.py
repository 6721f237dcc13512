"""The POS API v1 endpoints (`/pos/v1/...`), thin over `mall.payments` and `mall.catalog`.

Every endpoint but `/pos/v1/keys` (mall.codes) is signed by the terminal; every state-changing
POST runs under an Idempotency-Key. Views parse, call one service, serialise; the
idempotency wrapper commits the work together with its stored response.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import date
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from flask import Response, g, request
from sqlalchemy.orm import Session

from mall.benefits.services import grant_benefit
from mall.catalog.services import list_goods
from mall.clock import utcnow
from mall.codes import revocations
from mall.errors import ValidationFailed
from mall.extensions import db
from mall.http.extensions import api
from mall.http.openapi import Blueprint
from mall.partners.models import Partner, Terminal
from mall.payments import offline, refunds, services, statements
from mall.payments.models import Payment
from pos_adapter import idempotency, schemas
from pos_adapter.auth import authenticate, forget_terminal, reauthenticate
from pos_adapter.nonces import current_store

P = ParamSpec("P")
R = TypeVar("R")

blp = Blueprint(
    "pos",
    __name__,
    url_prefix="/pos/v1",
    description=(
        "Partner terminal API v1. Every request is signed (X-Terminal-Id, X-Timestamp, "
        "X-Nonce, X-Signature: HMAC-SHA256); state-changing POSTs need Idempotency-Key. "
        "See docs/pos-api.md."
    ),
)

SIGNED: list[dict[str, list[str]]] = [{"posSignature": []}]


@blp.record_once
def _declare_signature_scheme(_state: Any) -> None:
    schemes = api.spec.components.security_schemes
    if "posSignature" not in schemes:
        api.spec.components.security_scheme(
            "posSignature",
            {
                "type": "apiKey",
                "in": "header",
                "name": "X-Signature",
                "description": "HMAC-SHA256 over METHOD, PATH, X-Timestamp, X-Nonce and the "
                "body's SHA-256, with X-Terminal-Id naming the terminal (docs/pos-api.md)",
            },
        )


def terminal_request(
    idempotent: bool = False, *, one_statement: bool = False, records_contact: bool = True
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Authenticate the terminal (sets g.terminal, g.partner); optionally run idempotently.

    `one_statement`: a read whose answer comes from one query (a scan) needs no transaction;
    on PostgreSQL, with nonces kept outside the database, it runs in autocommit mode and is
    spared the BEGIN and COMMIT round trips (the pool restores the isolation level).
    `records_contact` False: the view records the terminal's contact itself (offline uploads)."""

    def decorator(view: Callable[P, R]) -> Callable[P, R]:
        @wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            session = db.session()
            if one_statement and _may_autocommit(session):
                session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            auth = authenticate(session, request, write=idempotent, record_contact=records_contact)
            g.terminal, g.partner = auth.terminal, auth.partner
            if not idempotent:
                result = view(*args, **kwargs)
                # A read: nothing to write, but COMMIT rather than the teardown's ROLLBACK,
                # because psycopg forgets its prepared statements on every ROLLBACK and the
                # hot reads are worth keeping prepared.
                session.commit()
                return result
            confirm = None
            if auth.versions is not None:
                confirm = idempotency.Confirmation(auth.versions, _refresh_terminal)
            resp = idempotency.run(
                session, request, auth.terminal.id, lambda: view(*args, **kwargs), confirm=confirm
            )
            return resp  # type: ignore[return-value]

        return wrapper

    return decorator


def _refresh_terminal() -> None:
    fresh = reauthenticate(db.session(), request)
    g.terminal, g.partner = fresh.terminal, fresh.partner


def _may_autocommit(session: Session) -> bool:
    # A session bound to a caller's connection (the tests' rolled-back transaction) keeps
    # that transaction; in production the request's session starts from the engine.
    return (
        session.bind is None
        and session.get_bind().dialect.name == "postgresql"
        and not current_store().writes_database
    )


def _terminal() -> Terminal:
    terminal: Terminal = g.terminal
    return terminal


def _partner() -> Partner:
    partner: Partner = g.partner
    return partner


def _actor() -> str:
    return f"terminal:{_terminal().terminal_id}"


def _items(raw: list[dict[str, Any]] | None) -> list[services.ItemRequest]:
    return [services.ItemRequest(i["sku"], i["qty"]) for i in raw or []]


def payment_dict(
    payment: Payment,
    *,
    with_balances: bool = False,
    balances: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """The payment as the contract answers it; `balances_after` when asked for (read now) or
    given (integrity fen, points: known by the caller)."""
    session = db.session()
    subject = payment.subject
    body: dict[str, Any] = {
        "payment_id": payment.public_id,
        "status": payment.status,
        "origin": payment.origin,
        "code_kind": payment.code_kind,
        "amount_fen": payment.amount_fen,
        "discount_rate_bp": payment.discount_rate_bp,
        "integrity_discount_fen": payment.integrity_discount_fen,
        "offline_shortfall_fen": payment.offline_shortfall_fen,
        "points_cost": payment.points_cost,
        "points_settlement_fen": payment.points_settlement_fen,
        "cash_due_fen": payment.cash_due_fen,
        "refunded_amount_fen": payment.refunded_amount_fen,
        "refunded_integrity_fen": payment.refunded_integrity_fen,
        "refunded_points": payment.refunded_points,
        "needs_review": payment.needs_review,
        "external_ref": payment.external_ref,
        "holder_ref": subject.ref,
        "business_date": payment.business_date,
        "created_at": payment.created_at,
        "captured_at": payment.captured_at,
        "expires_at": payment.expires_at,
        "voided_at": payment.voided_at,
        "items": [
            {
                "sku": i.sku,
                "name": i.name,
                "qty": i.qty,
                "points_price": i.points_price,
                "refunded_qty": i.refunded_qty,
            }
            for i in payment.items
        ],
        "refunds": [refund_dict(r) for r in payment.refunds],
    }
    if balances is None and with_balances:
        balances = services.available_balances(session, subject)
    if balances is not None:
        body["balances_after"] = {"integrity_fen": balances[0], "points": balances[1]}
    return body


def refund_dict(refund: Any) -> dict[str, Any]:
    return {
        "refund_id": refund.public_id,
        "amount_fen": refund.amount_fen,
        "integrity_fen": refund.integrity_fen,
        "points": refund.points,
        "items": refund.items,
        "business_date": refund.business_date,
        "created_at": refund.created_at,
    }


@blp.post("/scan")
@terminal_request(one_statement=True)
@blp.arguments(schemas.PosCodeIn)
@blp.response(200, schemas.PosScanOut)
@blp.doc(security=SIGNED)
def scan(data: dict[str, Any]) -> dict[str, Any]:
    """Who holds this code: holder, wallet, discount rate here, benefits. No side effect."""
    return services.scan(db.session(), _partner(), data["code"])


@blp.post("/quote")
@terminal_request()
@blp.arguments(schemas.PosQuoteIn)
@blp.response(200, schemas.PosQuoteOut)
@blp.doc(security=SIGNED)
def quote(data: dict[str, Any]) -> dict[str, Any]:
    """What a payment would do now. No side effect."""
    q = services.quote(
        db.session(),
        _partner(),
        data["code"],
        data["amount_fen"],
        _items(data["items"]),
        data["use_integrity"],
    )
    return {
        "amount_fen": q.amount_fen,
        "discount_rate_bp": q.discount_rate_bp,
        "integrity_discount_fen": q.integrity_discount_fen,
        "points_cost": q.points_cost,
        "cash_due_fen": q.cash_due_fen,
        "lines": [line.as_dict() for line in q.lines],
        "wallet": {"integrity_fen": q.integrity_available_fen, "points": q.points_available},
    }


@blp.post("/payments")
@terminal_request(idempotent=True)
@blp.arguments(schemas.PosPaymentIn)
@blp.response(201, schemas.PosPaymentOut)
@blp.doc(security=SIGNED)
def create_payment(data: dict[str, Any]) -> dict[str, Any]:
    """Commit a sale: `capture` false only authorises (holds) for up to 15 minutes."""
    sale = services.create_payment(
        db.session(),
        _partner(),
        services.PayRequest(
            code=data["code"],
            amount_fen=data["amount_fen"],
            items=_items(data["items"]),
            use_integrity=data["use_integrity"],
            capture=data["capture"],
            pin=data["pin"],
            external_ref=data["external_ref"],
        ),
        terminal_id=_terminal().id,
        terminal_code=_terminal().terminal_id,
    )
    return payment_dict(
        sale.payment, balances=(sale.available_integrity_fen, sale.available_points)
    )


def _cursor_id(cursor: str | None) -> int | None:
    if not cursor:  # absent or empty (`cursor=`, as the contract writes the first request)
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith("p"):
            raise ValueError(raw)
        return int(raw[1:])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationFailed(details={"fields": {"cursor": ["invalid cursor"]}}) from None


def _encode_cursor(payment_id: int | None) -> str | None:
    if payment_id is None:
        return None
    return base64.urlsafe_b64encode(f"p{payment_id}".encode()).decode().rstrip("=")


@blp.get("/payments")
@terminal_request()
@blp.arguments(schemas.PosListArgs, location="query")
@blp.response(200, schemas.PosPaymentPage)
@blp.doc(security=SIGNED)
def list_payments(args: dict[str, Any]) -> dict[str, Any]:
    """This partner's payments of a business day, oldest first, keyset-paginated."""
    rows, next_id = statements.list_payments(
        db.session(),
        _partner().id,
        args["business_date"],
        after_id=_cursor_id(args["cursor"]),
        limit=args["limit"],
    )
    return {"items": [payment_dict(p) for p in rows], "next_cursor": _encode_cursor(next_id)}


@blp.get("/payments/<string:payment_id>")
@terminal_request()
@blp.response(200, schemas.PosPaymentOut)
@blp.doc(security=SIGNED)
def get_payment(payment_id: str) -> dict[str, Any]:
    """The payment with its refunds (this partner's only)."""
    return payment_dict(services.get_payment(db.session(), _partner().id, payment_id[:40]))


@blp.post("/payments/<string:payment_id>/capture")
@terminal_request(idempotent=True)
@blp.arguments(schemas.PosCaptureIn)
@blp.response(200, schemas.PosPaymentOut)
@blp.doc(security=SIGNED)
def capture(data: dict[str, Any], payment_id: str) -> dict[str, Any]:
    """Complete an authorised payment, optionally for a smaller amount."""
    session = db.session()
    payment = services.get_payment(session, _partner().id, payment_id[:40])
    services.capture_payment(session, payment, data["amount_fen"], actor=_actor())
    return payment_dict(payment, with_balances=True)


@blp.post("/payments/<string:payment_id>/void")
@terminal_request(idempotent=True)
@blp.response(200, schemas.PosPaymentOut)
@blp.doc(security=SIGNED)
def void(payment_id: str) -> dict[str, Any]:
    """Undo an authorised payment, or a completed one of a day not yet settled."""
    session = db.session()
    payment = services.get_payment(session, _partner().id, payment_id[:40])
    services.void_payment(session, payment, actor=_actor())
    return payment_dict(payment, with_balances=True)


@blp.post("/payments/<string:payment_id>/refunds")
@terminal_request(idempotent=True)
@blp.arguments(schemas.PosRefundIn)
@blp.response(201, schemas.PosRefundResultOut)
@blp.doc(security=SIGNED)
def refund(data: dict[str, Any], payment_id: str) -> dict[str, Any]:
    """Refund part or all: integrity money in proportion, items' points and stock back."""
    session = db.session()
    payment = services.get_payment(session, _partner().id, payment_id[:40])
    result = refunds.refund_payment(
        session,
        payment,
        amount_fen=data["amount_fen"],
        items=[refunds.RefundItem(i["sku"], i["qty"]) for i in data["items"] or []],
        actor=_actor(),
    )
    return {**refund_dict(result), "payment": payment_dict(payment, with_balances=True)}


@blp.get("/statements/<string:business_date>")
@terminal_request()
@blp.arguments(schemas.PosStatementArgs, location="query")
@blp.response(200, schemas.PosStatementOut, description="JSON, or CSV with ?format=csv")
@blp.doc(security=SIGNED)
def statement(args: dict[str, Any], business_date: str) -> Any:
    """The partner's daily statement: counts, totals, net payable, and whether it is closed."""
    try:
        day = date.fromisoformat(business_date[:10]) if len(business_date) == 10 else None
    except ValueError:
        day = None
    if day is None:
        raise ValidationFailed(details={"fields": {"business_date": ["YYYY-MM-DD"]}})
    body = statements.daily_statement(db.session(), _partner().id, day)
    if args["format"] == "csv":
        resp = Response(statements.statement_csv(body), mimetype="text/csv")
        resp.headers["Content-Disposition"] = (
            f'attachment; filename="statement-{_partner().id}-{day.isoformat()}.csv"'
        )
        return resp
    return body


@blp.get("/catalog")
@terminal_request()
@blp.response(200, schemas.PosCatalogOut)
@blp.doc(security=SIGNED)
def catalog() -> dict[str, Any]:
    """Goods redeemable for points at this partner."""
    partner = _partner()
    goods = list_goods(db.session(), partner.id, active_only=True) if partner.accepts_points else []
    return {
        "items": [
            {
                "sku": item.sku,
                "name": item.name,
                "points_price": item.points_price,
                "stock": item.stock,
                "min_level": item.min_level_rank,
            }
            for item in goods
        ]
    }


@blp.post("/benefit-uses")
@terminal_request(idempotent=True)
@blp.arguments(schemas.PosBenefitUseIn)
@blp.response(201, schemas.PosBenefitUseResult)
@blp.doc(security=SIGNED)
def benefit_use(data: dict[str, Any]) -> dict[str, Any]:
    """Record that a benefit from the list was granted; enforces level, partner and limits.
    A card code needs `pin`, as a payment does; the value is computed from the benefit's
    terms on the bill `amount_fen`."""
    use, subject = grant_benefit(
        db.session(),
        code=data["code"],
        pin=data["pin"],
        benefit_id=data["benefit_id"],
        partner=_partner(),
        amount_fen=data["amount_fen"],
        terminal_id=_terminal().id,
        actor=_actor(),
    )
    return {
        "use_id": use.id,
        "benefit_id": use.benefit_id,
        "holder_ref": subject.ref,
        "amount_fen": use.amount_fen,
        "discount_fen": use.discount_fen,
        "funded_by": use.funded_by,
        "business_date": use.business_date,
        "created_at": use.created_at,
    }


@blp.post("/offline-batches")
# Judged against the terminal's contact before this upload, which records its own contact
# in its transaction (mall/payments/offline.py).
@terminal_request(idempotent=True, records_contact=False)
@blp.arguments(schemas.PosOfflineBatchIn)
@blp.response(200, schemas.PosOfflineBatchOut)
@blp.doc(security=SIGNED)
def offline_batch(data: dict[str, Any]) -> dict[str, Any]:
    """Store-and-forward upload: each record applied exactly once, answered one by one.
    Upload the queue first thing when back online (docs/pos-api.md section 6)."""
    results = offline.apply_batch(
        db.session(),
        _terminal(),
        _partner(),
        data["batch_id"],
        [
            offline.OfflineSale(
                local_id=r["local_id"],
                code=r["code"],
                captured_at=r["captured_at"],
                amount_fen=r["amount_fen"],
                integrity_discount_fen=r["integrity_discount_fen"],
                revocation_list_version=r["revocation_list_version"],
            )
            for r in data["records"]
        ],
    )
    forget_terminal(_terminal().terminal_id)
    return {"batch_id": data["batch_id"], "results": results}


@blp.get("/card-revocations")
@terminal_request()
@blp.arguments(schemas.PosRevocationArgs, location="query")
@blp.response(200, schemas.PosRevocationsOut)
@blp.doc(security=SIGNED)
def card_revocations(args: dict[str, Any]) -> dict[str, Any]:
    """The card revocation list after `since_version`: serials of cards reported lost or
    replaced, for tills that sell offline. Keep it and the `version`, and send that version
    with each offline record; the server records which version this terminal was given."""
    session = db.session()
    page = revocations.revoked_since(session, args["since_version"], args["limit"])
    offline.record_list_sync(session, _terminal(), page.version, utcnow())
    forget_terminal(_terminal().terminal_id)
    return {
        "since_version": page.since_version,
        "version": page.version,
        "more": page.more,
        "cards": page.cards,
    }


__all__ = ["blp"]
