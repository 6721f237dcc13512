"""The farmer's mobile pages at /m/ (server-rendered, zh-CN, large type).

Why a server-side session rather than tokens in sessionStorage: each page is one request
that arrives already filled in (no second round trip for data on a slow rural connection,
nothing to render in JavaScript on a low-end phone), and the credential is an HttpOnly,
SameSite=Lax signed cookie that page scripts cannot read, so an injected script could not
carry it off. Every POST carries the CSRF token (Flask-WTF `csrf.protect()`). The session
holds the household's opaque ref, the login time and the household's session generation, so
a PIN change, a lost card, a freeze or a logout on any device ends it (mall.subjects.logins).
Only the live code page and the history's "more" button use a few lines of JavaScript
(static/farmer.js, no build step).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlencode, urlsplit

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import get_locale, gettext
from flask_limiter.errors import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from mall.auth.services import FARMER_LOGIN_BLOCKED_STATUSES, authenticate_farmer
from mall.auth.throttle import form_phone
from mall.clock import as_aware, local_zone, utcnow
from mall.codes import qr
from mall.codes.services import PinRejected
from mall.errors import (
    Conflict,
    DomainError,
    NotFound,
    TooManyRequests,
    Unauthorized,
    ValidationFailed,
    error_body,
)
from mall.extensions import db
from mall.farmer import services
from mall.http.auth import SAFE_METHODS
from mall.http.extensions import csrf, remember_requested_lang
from mall.http.ratelimits import rate_limited
from mall.subjects.logins import end_household_sessions, generation_matches
from mall.subjects.models import CreditSubject

P = ParamSpec("P")
R = TypeVar("R")

bp = Blueprint(
    "farmer_pages",
    __name__,
    url_prefix="/m",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

SESSION_REF = "farmer_ref"
SESSION_AT = "farmer_at"
SESSION_GEN = "farmer_gen"
DEFAULT_FARMER_SESSION_SECONDS = 7 * 86400
CSP = (
    "default-src 'none'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


# ---------------------------------------------------------------- session


def _session_seconds() -> int:
    return int(current_app.config.get("FARMER_SESSION_SECONDS", DEFAULT_FARMER_SESSION_SECONDS))


def start_farmer_session(subject: CreditSubject) -> None:
    session.clear()  # nothing kept from before (no session fixation)
    session[SESSION_REF] = subject.ref
    session[SESSION_AT] = int(utcnow().timestamp())
    session[SESSION_GEN] = subject.session_gen


def farmer_from_session() -> CreditSubject | None:
    ref = session.get(SESSION_REF)
    if not isinstance(ref, str):
        return None
    login_at = session.get(SESSION_AT)
    subject = db.session.scalar(select(CreditSubject).where(CreditSubject.ref == ref))
    if (
        subject is None
        or subject.status in FARMER_LOGIN_BLOCKED_STATUSES
        or not isinstance(login_at, int)
        or utcnow().timestamp() - login_at > _session_seconds()
        or not generation_matches(subject, session.get(SESSION_GEN))
    ):
        session.clear()
        return None
    return subject


@bp.before_request
def _before() -> None:
    # The app leaves CSRF to each blueprint (the JSON APIs use tokens, not cookies).
    if request.method not in SAFE_METHODS:
        csrf.protect()
    g.subject = farmer_from_session()


@bp.after_request
def _after(resp: Response) -> Response:
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    resp.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    if request.endpoint != "farmer_pages.static":
        resp.headers["Cache-Control"] = "no-store"
    remember_requested_lang(resp)
    return resp


def _yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def _local(value: Any) -> str:
    return as_aware(value).astimezone(local_zone()).strftime("%Y-%m-%d %H:%M")


@bp.context_processor
def _template_context() -> dict[str, Any]:
    english = str(get_locale() or "zh_CN").startswith("en")
    args = {k: v for k, v in request.args.items() if k not in ("lang", "partial")}

    def lang_url(lang: str) -> str:
        return request.path + "?" + urlencode({**args, "lang": lang})

    return {
        "html_lang": "en" if english else "zh-CN",
        "english": english,
        "lang_url": lang_url,
        "yuan": _yuan,
        "local": _local,
    }


def farmer_page(view: Callable[P, R]) -> Callable[P, R | Any]:
    """Pages of a logged-in household: to the login page otherwise."""

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | Any:
        if g.get("subject") is None:
            return redirect(url_for("farmer_pages.login", next=request.path))
        return view(*args, **kwargs)

    return wrapper


def _safe_next(target: str | None) -> str:
    if target:
        parts = urlsplit(target)
        if (
            not parts.scheme
            and not parts.netloc
            and "\\" not in target
            and parts.path.startswith("/m/")
        ):
            return target
    return url_for("farmer_pages.home")


# ---------------------------------------------------------------- errors


def _error_page(status: int, message: str) -> tuple[str, int]:
    return render_template("farmer/error.html", message=message), status


@bp.errorhandler(CSRFError)
def _csrf_failed(_exc: CSRFError) -> tuple[str, int]:
    return _error_page(400, gettext("页面已过期,请返回刷新后重试"))


@bp.errorhandler(RateLimitExceeded)
def _rate_limited(exc: RateLimitExceeded) -> Any:
    # The login form answers a page; the live code's JSON keeps the envelope (Retry-After
    # is added by Flask-Limiter either way).
    if request.endpoint == "farmer_pages.code_json":
        return rate_limited(exc)
    return _error_page(429, gettext("请求过于频繁,请稍后再试"))


@bp.errorhandler(DomainError)
def _domain_error(exc: DomainError) -> tuple[str, int]:
    return _error_page(exc.status, str(error_body(exc.code)["error"]["message"]))


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> tuple[str, int]:
    if exc.code == 404:
        return _error_page(404, gettext("您访问的页面不存在"))
    return _error_page(exc.code or 400, gettext("请求有误,请返回重试"))


def share_page_setup(other: Blueprint) -> None:
    """Make another blueprint's pages under /m/ behave like these (mall.reservations): the
    same session and CSRF check, headers, template context and error pages."""
    other.before_request(_before)
    other.after_request(_after)
    other.context_processor(_template_context)
    other.register_error_handler(CSRFError, _csrf_failed)
    other.register_error_handler(DomainError, _domain_error)
    other.register_error_handler(HTTPException, _http_error)


# ---------------------------------------------------------------- pages


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    next_url = request.args.get("next")
    if g.subject is not None:
        return redirect(_safe_next(next_url))
    error, status = None, 200
    phone = ""
    if request.method == "POST":
        phone = form_phone(request.form.get("phone", ""))
        pin = request.form.get("pin", "").strip()[:32]
        if not phone or not pin:
            error, status = gettext("请填写手机号和密码"), 400
        else:
            try:
                subject = authenticate_farmer(db.session(), phone, pin)
            except TooManyRequests:
                db.session.commit()  # keep the count
                error, status = gettext("登录失败次数过多,请15分钟后再试"), 429
            except Unauthorized:
                db.session.commit()
                error, status = gettext("手机号或密码错误"), 401
            else:
                db.session.commit()
                start_farmer_session(subject)
                return redirect(_safe_next(next_url))
    return render_template("farmer/login.html", error=error, phone=phone), status


@bp.post("/logout")
def logout() -> Any:
    """Log out everywhere, as the API's logout does (mall.auth.services.logout): this page
    session, the household's other page sessions and its app logins."""
    if g.subject is not None:
        end_household_sessions(db.session(), g.subject, "logout")
        db.session.commit()
    session.clear()
    return redirect(url_for("farmer_pages.login"))


@bp.get("/")
@farmer_page
def home() -> Any:
    return render_template("farmer/home.html", me=services.me(db.session(), g.subject))


def _code_payload() -> dict[str, Any]:
    s = db.session()
    issued = services.fresh_code(s, g.subject)
    s.commit()  # the first code ever creates the signing key
    now = utcnow()
    image = base64.b64encode(qr.render_png(issued.code)).decode()
    return {
        "code": issued.code,
        "expires_at": issued.expires_at.isoformat(),
        "refresh_after": issued.refresh_after.isoformat(),
        # relative to the server's clock: a phone's own clock may be wrong
        "expires_in": max(0, int((issued.expires_at - now).total_seconds())),
        "refresh_in": max(1, int((issued.refresh_after - now).total_seconds())),
        "image": "data:image/png;base64," + image,
    }


@bp.get("/code")
@farmer_page
def code() -> Any:
    try:
        payload = _code_payload()
    except DomainError as exc:
        return _error_page(exc.status, str(error_body(exc.code)["error"]["message"]))
    return render_template("farmer/code.html", c=payload)


@bp.get("/code.json")
def code_json() -> Any:
    if g.subject is None:
        resp = jsonify(error_body("unauthorized"))
        resp.status_code = 401
        return resp
    try:
        return jsonify(_code_payload())
    except DomainError as exc:
        resp = jsonify(error_body(exc.code, exc.details))
        resp.status_code = exc.status
        return resp


@bp.get("/history")
@farmer_page
def history() -> Any:
    cursor = request.args.get("cursor") or None
    page = services.transactions(db.session(), g.subject, cursor=cursor, limit=20)
    more = (
        url_for("farmer_pages.history", cursor=page["next_cursor"]) if page["next_cursor"] else ""
    )
    if request.args.get("partial") == "1":
        resp = Response(render_template("farmer/_history_items.html", items=page["items"]))
        resp.headers["X-Next-Url"] = more
        return resp
    return render_template(
        "farmer/history.html", items=page["items"], more=more, first=cursor is None
    )


@bp.get("/benefits")
@farmer_page
def benefits() -> Any:
    data = services.benefit_groups(db.session(), g.subject)
    return render_template("farmer/benefits.html", data=data)


@bp.get("/catalog")
@farmer_page
def catalog() -> Any:
    s = db.session()
    items = services.catalog(s, g.subject)
    by_partner: dict[int, dict[str, Any]] = {}
    for item in items:
        entry = by_partner.setdefault(item["partner"]["id"], {**item["partner"], "goods": []})
        entry["goods"].append(item)
    places = services.partners(s, g.subject, category="supermarket") + services.partners(
        s, g.subject, category="wholesale"
    )
    return render_template(
        "farmer/catalog.html",
        groups=list(by_partner.values()),
        places=[p for p in places if p["accepts_points"]],
    )


@bp.route("/pin", methods=["GET", "POST"])
@farmer_page
def pin() -> Any:
    error, status = None, 200
    if request.method == "POST":
        old = request.form.get("old_pin", "").strip()[:32]
        new = request.form.get("new_pin", "").strip()[:32]
        again = request.form.get("new_pin2", "").strip()[:32]
        s = db.session()
        if new != again:
            error, status = gettext("两次输入的新密码不一致"), 400
        else:
            try:
                services.change_pin(s, g.subject, old, new)
            except PinRejected as exc:
                s.commit()  # the failure count must outlive the refusal
                error, status = _pin_message(exc), exc.status
            except DomainError as exc:
                error, status = str(error_body(exc.code)["error"]["message"]), exc.status
            else:
                s.commit()
                start_farmer_session(g.subject)  # this session stays; the others end
                flash(gettext("密码已修改"), "success")
                return redirect(url_for("farmer_pages.home"))
    return render_template("farmer/pin.html", error=error), status


def _pin_message(exc: PinRejected) -> str:
    if exc.code == "pin_invalid":
        left = exc.details.get("attempts_left")
        return gettext("原密码错误,还可以再试%(n)s次", n=left)
    return str(error_body(exc.code)["error"]["message"])


@bp.route("/card-lost", methods=["GET", "POST"])
@farmer_page
def card_lost() -> Any:
    s = db.session()
    if request.method == "POST":
        if request.form.get("confirm") != "yes":
            return redirect(url_for("farmer_pages.card_lost"))
        try:
            result = services.report_card_lost(s, g.subject)
        except NotFound:
            return render_template("farmer/card_lost.html", card=None, done=None)
        s.commit()
        start_farmer_session(g.subject)  # this session stays; the others end
        return render_template("farmer/card_lost.html", card=None, done=result)
    card = services.me(s, g.subject)["card"]
    return render_template("farmer/card_lost.html", card=card, done=None)


@bp.route("/rating", methods=["GET", "POST"])
@farmer_page
def rating() -> Any:
    """The household's ratings, their notice and appeal dates and answers; POST files an
    appeal (复议) against one of them."""
    s = db.session()
    error, status, failed_id, grounds = None, 200, None, ""
    if request.method == "POST":
        raw_id = request.form.get("rating_id", "")
        grounds = request.form.get("grounds", "")[:2000]
        # A refusal has written nothing (file_appeal checks before it writes): the page is
        # shown again in the same transaction, which the end of the request rolls back.
        try:
            if not raw_id.isdigit() or len(raw_id) > 19:
                raise NotFound()
            failed_id = int(raw_id)
            appeal = services.file_my_appeal(s, g.subject, failed_id, grounds)
        except ValidationFailed as exc:
            error, status = _grounds_problem(exc.details["fields"]["grounds"][0]), 400
        except NotFound:
            error, status, failed_id = gettext("没有找到这条评级"), 404, None
        except Conflict:
            error = gettext("这条评级现在不能申请复议:已过复议期限,或已有复议正在办理。")
            status = 409
        else:
            s.commit()
            flash(
                gettext(
                    "复议申请已提交。村里将在%(date)s前答复。",
                    date=appeal["answer_due"].isoformat(),
                ),
                "success",
            )
            return redirect(url_for("farmer_pages.rating"))
    items = services.my_ratings(s, g.subject)
    return render_template(
        "farmer/rating.html",
        items=items,
        error=error,
        failed_id=failed_id,
        grounds=grounds if failed_id is not None else "",
        max_chars=services.GROUNDS_MAX_CHARS,
    ), status


def _grounds_problem(problem: str) -> str:
    """The service's refusal of an appeal's grounds, in the household's words."""
    if problem == services.GROUNDS_REQUIRED:
        return gettext("请填写复议理由")
    if problem == services.GROUNDS_TOO_LONG:
        return gettext("复议理由不能超过%(n)s字", n=services.GROUNDS_MAX_CHARS)
    return gettext("复议理由里有无法保存的字符,请修改后再提交")
