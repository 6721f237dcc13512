"""The cashier web terminal at /cashier: login, the till, receipts, refunds, voids, the day.

Pages are server-rendered; the till uses a little JavaScript (static/cashier.js, no build
step, no CDN) for the scanner field, the camera, and the live quote. The views parse, call
the `mall.payments` services directly (not the HMAC API) with the cashier as the actor and
the partner's web terminal as the till, and commit once. The state-changing POSTs (pay,
refund, void) run under the POS idempotency store with a key from a hidden form field, so a
double click or a browser retry does the work once and shows the first answer again.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import date
from functools import wraps
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlencode

from flask import (
    Blueprint,
    Response,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale, gettext
from flask_limiter.errors import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from mall.auth.services import login_staff
from mall.catalog.services import list_goods
from mall.clock import as_aware, business_date, local_zone
from mall.errors import DomainError, TooManyRequests, Unauthorized, ValidationFailed, error_body
from mall.extensions import db
from mall.http.auth import SAFE_METHODS
from mall.http.extensions import csrf, remember_requested_lang
from mall.payments import refunds, services, statements
from mall.payments.models import Payment
from mall.payments.services import actor_label
from mall.regions.models import Region
from mall.subjects.models import CreditSubject
from pos_adapter import idempotency
from pos_adapter.cashier.auth import (
    CashierContext,
    cashier_context,
    cashier_from_session,
    end_cashier_session,
    start_cashier_session,
)
from pos_adapter.cashier.money import format_yuan, parse_yuan

P = ParamSpec("P")
R = TypeVar("R")

bp = Blueprint(
    "cashier",
    __name__,
    url_prefix="/cashier",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

CSP = (
    "default-src 'none'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; media-src 'self' blob: mediastream:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
# Endpoints answering JSON (fetched by the till), and the POSTs whose work runs inside the
# idempotency store (which renders a refusal through our error handler, then reads it).
_JSON_ENDPOINTS = frozenset({"cashier.scan", "cashier.quote"})
_ENVELOPE_ENDPOINTS = _JSON_ENDPOINTS | {
    "cashier.pay",
    "cashier.refund",
    "cashier.void",
    "cashier.pickup_confirm",  # pos_adapter/cashier/pickup.py
}
MAX_QTY = 999
DAY_PAGE = 50


# ---------------------------------------------------------------- request plumbing


@bp.before_request
def _before() -> None:
    # The app leaves CSRF checks to each blueprint (the JSON APIs use tokens, not cookies).
    if request.method not in SAFE_METHODS:
        csrf.protect()
    g.cashier = None if request.endpoint == "cashier.static" else cashier_from_session(db.session())


@bp.after_request
def _after(resp: Response) -> Response:
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["Permissions-Policy"] = "camera=(self), microphone=(), geolocation=()"
    resp.headers["Referrer-Policy"] = "no-referrer"
    if request.endpoint != "cashier.static":
        resp.headers["Cache-Control"] = "no-store"
    remember_requested_lang(resp)
    return resp


def _english() -> bool:
    return str(get_locale() or "zh_CN").startswith("en")


def _local_time(value: Any) -> str:
    return as_aware(value).astimezone(local_zone()).strftime("%Y-%m-%d %H:%M:%S")


@bp.context_processor
def _template_context() -> dict[str, Any]:
    english = _english()
    args = {k: v for k, v in request.args.items() if k != "lang"}

    def lang_url(lang: str) -> str:
        return request.path + "?" + urlencode({**args, "lang": lang})

    return {
        "html_lang": "en" if english else "zh-CN",
        "english": english,
        "lang_url": lang_url,
        "yuan": format_yuan,
        "local_time": _local_time,
        "ctx": g.get("cashier"),
    }


def _message(code: str, details: dict[str, Any] | None = None) -> str:
    details = details or {}
    if code == "pin_invalid" and details.get("attempts_left") is not None:
        return gettext("密码错误,还可以再试%(n)s次", n=details["attempts_left"])
    if code == "validation_error":
        fields = details.get("fields") or {}
        if "amount" in fields or "amount_fen" in fields:
            return gettext("金额格式不正确:请输入元,最多两位小数,例如 12.30")
        if "refund_amount" in fields:
            return gettext("退款金额格式不正确:请输入元,最多两位小数")
        if "items" in fields:
            return gettext("兑换数量不正确")
        if "nothing" in fields:
            return gettext("请输入金额或选择兑换商品")
        if "refund" in fields:
            return gettext("请填写退款金额或退货数量")
    message: str = error_body(code)["error"]["message"]
    return message


def _error_page(status: int, message: str) -> tuple[str, int]:
    return render_template("cashier/error.html", message=message), status


def _json_error(status: int, code: str, details: dict[str, Any] | None = None) -> Response:
    resp = jsonify(error_body(code, details, _message(code, details)))
    resp.status_code = status
    return resp


@bp.errorhandler(CSRFError)
def _csrf_failed(_exc: CSRFError) -> Any:
    if request.endpoint in _JSON_ENDPOINTS:
        return _json_error(400, "csrf_failed")
    return _error_page(400, gettext("页面已过期,请刷新后重试"))


@bp.errorhandler(DomainError)
def _domain_error(exc: DomainError) -> Any:
    if request.endpoint in _ENVELOPE_ENDPOINTS:
        return _json_error(exc.status, exc.code, exc.details)
    return _error_page(exc.status, exc.message or _message(exc.code, exc.details))


@bp.errorhandler(RateLimitExceeded)
def _rate_limited(_exc: RateLimitExceeded) -> Any:
    # The login form: a page, not JSON (Retry-After is added by Flask-Limiter).
    return _error_page(429, _message("rate_limited"))


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Any:
    status = exc.code or 400
    if request.endpoint in _JSON_ENDPOINTS or (request.endpoint is None and request.is_json):
        return _json_error(status, "not_found" if status == 404 else "bad_request")
    if status == 404:
        return _error_page(404, gettext("您访问的页面不存在"))
    return _error_page(status, gettext("请求有误,请返回重试"))


def cashier_page(view: Callable[P, R]) -> Callable[P, R | Any]:
    """Pages of a logged-in cashier (to the login page otherwise); JSON endpoints answer
    401 in the envelope instead."""

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | Any:
        if g.get("cashier") is None:
            if request.endpoint in _JSON_ENDPOINTS:
                return _json_error(401, "unauthorized")
            return redirect(url_for("cashier.login"))
        return view(*args, **kwargs)

    return wrapper


def _ctx() -> CashierContext:
    ctx: CashierContext = g.cashier
    return ctx


def _actor() -> str:
    return actor_label(None, _ctx().user.id)


# ---------------------------------------------------------------- login


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if g.cashier is not None:
        return redirect(url_for("cashier.till"))
    error, status, username = None, 200, ""
    if request.method == "POST":
        username = request.form.get("username", "").strip()[:64]
        password = request.form.get("password", "")[:256]
        s = db.session()
        if not username or not password:
            error, status = gettext("请填写用户名和密码"), 400
        else:
            try:
                user = login_staff(s, username, password)
                ctx = cashier_context(s, user)
            except TooManyRequests:
                s.commit()  # keep the failure count
                error, status = gettext("登录失败次数过多,请15分钟后再试"), 429
            except Unauthorized:
                s.commit()
                error, status = gettext("用户名或密码错误"), 401
            except DomainError as exc:
                s.rollback()
                error, status = _login_refusal(exc), exc.status
            else:
                s.commit()
                start_cashier_session(ctx)
                return redirect(url_for("cashier.till"))
    return render_template("cashier/login.html", error=error, username=username), status


def _login_refusal(exc: DomainError) -> str:
    if exc.code == "terminal_disabled":
        return gettext("本店的网页收银台已停用,请联系乡镇管理员")
    if exc.code == "partner_not_eligible":
        return gettext("本店已停止合作,不能收银")
    return gettext("此账号不是收银员账号,请使用收银员账号登录")


@bp.post("/logout")
def logout() -> Any:
    end_cashier_session()
    return redirect(url_for("cashier.login"))


# ---------------------------------------------------------------- the till


def _catalogue() -> list[Any]:
    partner = _ctx().partner
    if not partner.accepts_points:
        return []
    return list_goods(db.session(), partner.id, active_only=True)


def _till(
    *, error: str | None = None, form: dict[str, Any] | None = None, status: int = 200
) -> tuple[str, int]:
    return (
        render_template(
            "cashier/till.html",
            goods=_catalogue(),
            error=error,
            form=form or {},
            idempotency_key=secrets.token_urlsafe(24),
        ),
        status,
    )


@bp.get("/")
@cashier_page
def till() -> Any:
    return _till()


def _json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ValidationFailed(details={"fields": {"body": ["a JSON object"]}})
    return body


def _items(raw: object) -> list[services.ItemRequest]:
    """[{sku, qty}] from the quote request, or the form's parallel item_sku/item_qty."""
    if not isinstance(raw, list):
        raise ValidationFailed(details={"fields": {"items": ["a list"]}})
    items = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise ValidationFailed(details={"fields": {"items": ["{sku, qty}"]}})
        sku, qty = entry.get("sku"), _qty(entry.get("qty"))
        if not isinstance(sku, str) or not 0 < len(sku) <= 64:
            raise ValidationFailed(details={"fields": {"items": ["sku"]}})
        if qty:
            items.append(services.ItemRequest(sku, qty))
    return items


def _qty(value: object) -> int:
    text = str(value).strip() if isinstance(value, str | int) else ""
    if text == "":
        return 0
    if not text.isascii() or not text.isdigit() or int(text) > MAX_QTY:
        raise ValidationFailed(details={"fields": {"items": [f"0 to {MAX_QTY}"]}})
    return int(text)


def _form_items(sku_field: str, qty_field: str) -> list[dict[str, Any]]:
    skus, qtys = request.form.getlist(sku_field), request.form.getlist(qty_field)
    if len(skus) != len(qtys):
        raise ValidationFailed(details={"fields": {"items": ["mismatched"]}})
    return [{"sku": sku, "qty": qty} for sku, qty in zip(skus, qtys, strict=True)]


def _level(holder: dict[str, Any]) -> dict[str, Any] | None:
    level: dict[str, Any] | None = holder.get("level")
    return level


@bp.post("/scan")
@cashier_page
def scan() -> Any:
    """Who holds the scanned code: holder, balances, rate, benefits here. No side effect."""
    code = _json_body().get("code")
    result = services.scan(
        db.session(), _ctx().partner, code.strip() if isinstance(code, str) else code
    )
    english = _english()
    holder, wallet = result["holder"], result["wallet"]
    return jsonify(
        {
            "holder": {
                "display_name": holder["display_name"],
                "village": holder["village"],
                "level": _level(holder),
                "status": holder["status"],
            },
            "wallet": {
                "integrity_fen": wallet["integrity_fen"],
                "integrity_yuan": format_yuan(wallet["integrity_fen"]),
                "points": wallet["points"],
            },
            "discount_rate_bp": result["discount_rate_bp"],
            "discount_percent": _percent(result["discount_rate_bp"]),
            "benefits": [
                (b["title_en"] or b["title"]) if english else b["title"] for b in result["benefits"]
            ],
            "pin_required": result["pin_required"],
            "code_kind": result["code_kind"],
        }
    )


def _percent(rate_bp: int) -> str:
    whole, rest = divmod(rate_bp, 100)
    return f"{whole}%" if rest == 0 else f"{whole}.{rest:02d}".rstrip("0") + "%"


@bp.post("/quote")
@cashier_page
def quote() -> Any:
    """What the sale would do now: the live quote of the till. No side effect."""
    body = _json_body()
    amount_fen = parse_yuan(body.get("amount", ""), allow_empty=True) or 0
    q = services.quote(
        db.session(),
        _ctx().partner,
        body.get("code"),
        amount_fen,
        _items(body.get("items") or []),
        body.get("use_integrity", True) is not False,
    )
    return jsonify(
        {
            "amount_fen": q.amount_fen,
            "amount_yuan": format_yuan(q.amount_fen),
            "discount_percent": _percent(q.discount_rate_bp),
            "integrity_discount_fen": q.integrity_discount_fen,
            "integrity_discount_yuan": format_yuan(q.integrity_discount_fen),
            "cash_due_fen": q.cash_due_fen,
            "cash_due_yuan": format_yuan(q.cash_due_fen),
            "points_cost": q.points_cost,
            "lines": [line.as_dict() for line in q.lines],
        }
    )


def _sale_form() -> dict[str, Any]:
    """What to put back into the till after a refusal (never the PIN)."""
    items = {}
    for entry in _form_items("item_sku", "item_qty"):
        items[entry["sku"]] = entry["qty"]
    return {
        "code": request.form.get("code", "")[:2048],
        "amount": request.form.get("amount", "")[:32],
        "use_integrity": request.form.get("use_integrity") == "1",
        "items": items,
    }


@bp.post("/pay")
@cashier_page
def pay() -> Any:
    """Confirm the sale. Runs once per form (the hidden idempotency key): a repeat shows the
    first answer, the receipt of the one payment."""
    s = db.session()
    ctx = _ctx()
    try:
        form = _sale_form()
        amount_fen = parse_yuan(form["amount"], allow_empty=True) or 0
        items = _items(_form_items("item_sku", "item_qty"))
        if amount_fen == 0 and not items:
            raise ValidationFailed(details={"fields": {"nothing": ["amount or items"]}})
        if not form["code"].strip():
            raise ValidationFailed(details={"fields": {"code": ["required"]}})
    except ValidationFailed as exc:
        return _till(error=_message(exc.code, exc.details), form=_safe_form(), status=400)
    pin = request.form.get("pin", "").strip()[:32] or None

    def work() -> Any:
        payment = services.create_payment(
            s,
            ctx.partner,
            services.PayRequest(
                code=form["code"].strip(),
                amount_fen=amount_fen,
                items=items,
                use_integrity=form["use_integrity"],
                capture=True,
                pin=pin,
            ),
            terminal_id=ctx.terminal.id,
            terminal_code=ctx.terminal.terminal_id,
            cashier_user_id=ctx.user.id,
        ).payment
        return jsonify({"payment_id": payment.public_id}), 201

    resp = _run_once(work)
    if resp.status_code == 201:
        payment_id = json.loads(resp.get_data(as_text=True))["payment_id"]
        return redirect(url_for("cashier.receipt", payment_id=payment_id), 303)
    code, details = _refusal(resp)
    return _till(error=_message(code, details), form=form, status=resp.status_code)


def _safe_form() -> dict[str, Any]:
    try:
        return _sale_form()
    except ValidationFailed:
        return {}


def _run_once(work: Callable[[], Any]) -> Response:
    return idempotency.run(
        db.session(),
        request,
        _ctx().terminal.id,
        work,
        key=request.form.get("idempotency_key", ""),
        digest=idempotency.form_digest(request),
    )


def _refusal(resp: Response) -> tuple[str, dict[str, Any]]:
    try:
        error = json.loads(resp.get_data(as_text=True))["error"]
        return str(error["code"]), dict(error.get("details") or {})
    except (ValueError, KeyError, TypeError):
        return "internal_error", {}


# ---------------------------------------------------------------- receipt, refund, void


def _payment(payment_id: str) -> Payment:
    return services.get_payment(db.session(), _ctx().partner.id, payment_id[:40])


def _receipt(
    payment: Payment, *, error: str | None = None, status: int = 200, fresh: bool = False
) -> tuple[str, int]:
    s = db.session()
    subject = s.get(CreditSubject, payment.subject_id)
    assert subject is not None
    village = s.get(Region, subject.village_id)
    integrity, points = services.available_balances(s, subject)
    holder = services.holder_view(s, subject)
    refundable_fen = payment.amount_fen - payment.refunded_amount_fen
    # The payment services' own rules: a button shows exactly where the service accepts.
    can_refund = refunds.may_refund(payment)
    can_void = services.may_void(s, payment)
    return (
        render_template(
            "cashier/receipt.html",
            p=payment,
            holder=holder,
            village=village.name if village else "",
            balances={"integrity_fen": integrity, "points": points},
            refundable_fen=refundable_fen,
            can_refund=can_refund,
            can_void=can_void,
            error=error,
            fresh=fresh,
            percent=_percent,
            idempotency_key=secrets.token_urlsafe(24),
        ),
        status,
    )


@bp.get("/payments/<string:payment_id>")
@cashier_page
def receipt(payment_id: str) -> Any:
    return _receipt(_payment(payment_id), fresh=request.args.get("new") == "1")


@bp.post("/payments/<string:payment_id>/refund")
@cashier_page
def refund(payment_id: str) -> Any:
    """Refund part (an amount in yuan and/or returned goods) or all that is left."""
    s = db.session()
    payment = _payment(payment_id)
    full = request.form.get("mode") == "full"
    try:
        if full:
            amount_fen, items = None, None
        else:
            amount_fen = parse_yuan(
                request.form.get("refund_amount", ""), field="refund_amount", allow_empty=True
            )
            items = [
                refunds.RefundItem(i.sku, i.qty)
                for i in _items(_form_items("refund_sku", "refund_qty"))
            ]
            if not amount_fen and not items:
                raise ValidationFailed(details={"fields": {"refund": ["amount or items"]}})
    except ValidationFailed as exc:
        return _receipt(payment, error=_message(exc.code, exc.details), status=400)

    def work() -> Any:
        result = refunds.refund_payment(
            s,
            payment,
            amount_fen=None if full else (amount_fen or 0),
            items=items,
            actor=_actor(),
        )
        return jsonify({"refund_id": result.public_id, "amount_fen": result.amount_fen}), 201

    resp = _run_once(work)
    if resp.status_code == 201:
        amount = json.loads(resp.get_data(as_text=True))["amount_fen"]
        flash(gettext("已退款 %(amount)s 元", amount=format_yuan(amount)), "success")
        return redirect(url_for("cashier.receipt", payment_id=payment.public_id), 303)
    s.expire_all()
    code, details = _refusal(resp)
    return _receipt(_payment(payment_id), error=_message(code, details), status=resp.status_code)


@bp.post("/payments/<string:payment_id>/void")
@cashier_page
def void(payment_id: str) -> Any:
    """Undo the whole payment (same business day, no refunds yet)."""
    s = db.session()
    payment = _payment(payment_id)

    def work() -> Any:
        services.void_payment(s, payment, actor=_actor())
        return jsonify({"payment_id": payment.public_id, "status": payment.status}), 200

    resp = _run_once(work)
    if resp.status_code == 200:
        flash(gettext("交易已撤销"), "success")
        return redirect(url_for("cashier.receipt", payment_id=payment_id), 303)
    s.expire_all()
    code, details = _refusal(resp)
    return _receipt(_payment(payment_id), error=_message(code, details), status=resp.status_code)


# ---------------------------------------------------------------- the day


def _day_arg() -> date:
    raw = request.args.get("date", "")
    if raw:
        try:
            return date.fromisoformat(raw[:10])
        except ValueError:
            pass
    return business_date()


@bp.get("/day")
@cashier_page
def day() -> Any:
    """The partner's payments of a business day (every till), newest first."""
    s = db.session()
    the_day = _day_arg()
    after = request.args.get("after", "")
    rows, next_id = statements.list_payments(
        s,
        _ctx().partner.id,
        the_day,
        after_id=int(after) if after.isdigit() else None,
        limit=DAY_PAGE,
        newest_first=True,
    )
    subjects = {
        sub.id: sub
        for sub in s.scalars(
            select(CreditSubject).where(CreditSubject.id.in_({p.subject_id for p in rows}))
        )
    }
    return render_template(
        "cashier/day.html",
        day=the_day,
        rows=rows,
        names={sid: sub.name_masked for sid, sub in subjects.items()},
        next_url=url_for("cashier.day", date=the_day.isoformat(), after=next_id)
        if next_id
        else None,
    )


@bp.get("/statement")
@cashier_page
def statement() -> Any:
    """The partner's daily statement (the same numbers as GET /pos/v1/statements/{day})."""
    the_day = _day_arg()
    body = statements.daily_statement(db.session(), _ctx().partner.id, the_day)
    if request.args.get("format") == "csv":
        resp = Response(statements.statement_csv(body), mimetype="text/csv")
        resp.headers["Content-Disposition"] = (
            f'attachment; filename="statement-{_ctx().partner.id}-{the_day.isoformat()}.csv"'
        )
        return resp
    return render_template("cashier/statement.html", day=the_day, st=body)


__all__ = ["bp"]
