"""The admin blueprint at /admin: login, logout, the landing page, and what every page shares
(login required, CSRF on unsafe methods, the language switch, HTML error pages)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlencode, urlsplit

from flask import (
    Blueprint,
    Response,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale, gettext
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as WerkzeugResponse

from admin.common import can_write, fen
from admin.forms import CATEGORY_LABELS, STATUS_LABELS, LoginForm
from admin.nav import NAV_ITEMS
from mall.auth.services import login_staff
from mall.errors import MESSAGES, DomainError, TooManyRequests, Unauthorized
from mall.extensions import db
from mall.http.auth import (
    SAFE_METHODS,
    end_staff_session,
    staff_from_session,
    start_staff_session,
)
from mall.http.extensions import csrf, remember_requested_lang

P = ParamSpec("P")
R = TypeVar("R")

bp = Blueprint(
    "admin",
    __name__,
    url_prefix="/admin",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

ROLE_LABELS = {
    "county_admin": _l("县级管理员"),
    "township_admin": _l("乡镇管理员"),
    "village_clerk": _l("村文书"),
    "auditor": _l("审计员"),
    "cashier": _l("收银员"),
}


@bp.before_request
def _before() -> None:
    # The app leaves CSRF checks to each blueprint (the JSON APIs use tokens, not cookies).
    if request.method not in SAFE_METHODS:
        csrf.protect()
    g.user = None if request.endpoint == "admin.static" else staff_from_session()


# As the farmer and cashier pages: no inline script or style, no framing, forms post home.
CSP = (
    "default-src 'none'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


@bp.after_request
def _after(resp: Response) -> Response:
    remember_requested_lang(resp)
    if g.get("user") is not None:
        resp.headers["Cache-Control"] = "no-store"
    resp.headers.setdefault("Content-Security-Policy", CSP)
    return resp


@bp.app_template_global()
def lang_switch_url(lang: str) -> str:
    args = {k: v for k, v in request.args.items() if k != "lang"}
    args["lang"] = lang
    return request.path + "?" + urlencode(args)


@bp.app_template_filter("reject_cursor")
def _reject_cursor(args: Any) -> str:
    return urlencode([(k, v) for k, v in args.items(multi=True) if k not in ("after", "format")])


@bp.app_template_filter("with_format")
def _with_format(args: Any, fmt: str) -> str:
    pairs = [(k, v) for k, v in args.items(multi=True) if k not in ("after", "format")]
    return urlencode([*pairs, ("format", fmt)])


@bp.context_processor
def _template_context() -> dict[str, Any]:
    user = g.get("user")
    locale = str(get_locale() or "zh_CN")
    return {
        "current_lang": "en" if locale.startswith("en") else "zh_CN",
        "html_lang": "en" if locale.startswith("en") else "zh-CN",
        "nav_items": sorted(
            (i for i in NAV_ITEMS if user is not None and i.visible_to(user.role)),
            key=lambda i: i.order,
        ),
        "role_label": lambda role: ROLE_LABELS.get(role, role),
        "can_write": user is not None and can_write(user),
        "fen": fen,
        "category_label": lambda c: CATEGORY_LABELS.get(c, c),
        "status_label": lambda s: STATUS_LABELS.get(s, s),
    }


def _error_page(status: int, title: str, message: str) -> tuple[str, int]:
    return render_template("admin/error.html", title=title, message=message), status


@bp.errorhandler(CSRFError)
def _csrf_failed(_exc: CSRFError) -> tuple[str, int]:
    return _error_page(400, gettext("页面已过期"), gettext("页面已过期,请刷新后重试"))


@bp.errorhandler(DomainError)
def _domain_error(exc: DomainError) -> tuple[str, int]:
    if exc.status == 403:
        return _error_page(403, gettext("没有权限"), gettext("没有权限执行此操作"))
    if exc.status == 404:  # out of scope looks exactly like absent
        return _error_page(404, gettext("未找到"), gettext("您访问的页面不存在"))
    return _error_page(
        exc.status, gettext("操作未完成"), exc.message or str(MESSAGES.get(exc.code, exc.code))
    )


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> tuple[str, int]:
    status = exc.code or 500
    if status == 404:
        return _error_page(404, gettext("未找到"), gettext("您访问的页面不存在"))
    if status == 403:
        return _error_page(403, gettext("没有权限"), gettext("没有权限执行此操作"))
    return _error_page(status, gettext("请求有误"), gettext("请求有误,请返回重试"))


def staff_page(*roles: str) -> Callable[[Callable[P, R]], Callable[P, R | Any]]:
    """Admin pages: redirect to the login page without a session; 403 for other roles
    (any staff role when `roles` is empty). `g.user` is the logged-in user."""

    def decorator(view: Callable[P, R]) -> Callable[P, R | Any]:
        @wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | Any:
            user = g.get("user")
            if user is None:
                return redirect(url_for("admin.login", next=request.full_path.rstrip("?")))
            if roles and user.role not in roles:
                return _error_page(403, gettext("没有权限"), gettext("没有权限执行此操作"))
            return view(*args, **kwargs)

        return wrapper

    return decorator


def _safe_next(target: str | None) -> str:
    """Only our own admin pages: never another host (an open redirect)."""
    if target:
        parts = urlsplit(target)
        if (
            not parts.scheme
            and not parts.netloc
            and "\\" not in target
            and (parts.path == "/admin" or parts.path.startswith("/admin/"))
        ):
            return target
    return url_for("admin.index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    next_url = request.args.get("next")
    if g.user is not None:
        return redirect(_safe_next(next_url))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        try:
            user = login_staff(db.session(), form.username.data or "", form.password.data or "")
        except TooManyRequests:
            db.session.commit()  # keep the count
            form.form_errors.append(gettext("登录失败次数过多,请15分钟后再试"))
            status = 429
        except Unauthorized:
            db.session.commit()
            form.form_errors.append(gettext("用户名或密码错误"))
            status = 401
        else:
            start_staff_session(user)
            db.session.commit()
            flash(gettext("登录成功"), "success")
            return redirect(_safe_next(next_url))
    elif request.method == "POST":
        status = 400
    return render_template("admin/login.html", form=form, next_url=next_url), status


@bp.post("/logout")
def logout() -> WerkzeugResponse:
    end_staff_session()
    flash(gettext("您已退出登录"), "success")
    return redirect(url_for("admin.login"))
