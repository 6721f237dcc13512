"""Flask extensions of the web layer, bound to an app in `create_app`: the OpenAPI registry,
CSRF, rate limits, translations and the request's language."""

from __future__ import annotations

from flask import Response, current_app, request
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf import CSRFProtect

from mall.http.openapi import MallApi

SUPPORTED_LOCALES = ("zh_CN", "en")

babel = Babel()
csrf = CSRFProtect()
api = MallApi()
# Limits, storage and headers come from the app config (RATELIMIT_*); see mall.http.ratelimits.
limiter = Limiter(get_remote_address)


LANG_COOKIE = "lang"
LANG_COOKIE_SECONDS = 365 * 86400


def _lang_code(value: str | None) -> str | None:
    """`en...` -> "en", `zh...` -> "zh_CN", anything else -> None."""
    normalized = (value or "").replace("-", "_").lower()
    if normalized.startswith("en"):
        return "en"
    if normalized.startswith("zh"):
        return "zh_CN"
    return None


def select_locale() -> str:
    """zh-CN unless the caller asks for English (`?lang=en`, a `lang` cookie, Accept-Language)."""
    for candidate in (request.args.get("lang"), request.cookies.get(LANG_COOKIE)):
        code = _lang_code(candidate)
        if code:
            return code
    best = request.accept_languages.best_match(["zh", "zh-CN", "en"], default="zh-CN")
    return "en" if best and best.startswith("en") else "zh_CN"


def remember_requested_lang(resp: Response) -> Response:
    """Pages: a `?lang=` choice is kept in a cookie, so the next page speaks the same."""
    code = _lang_code(request.args.get("lang"))
    if code is not None:
        resp.set_cookie(
            LANG_COOKIE,
            code,
            max_age=LANG_COOKIE_SECONDS,
            samesite="Lax",
            httponly=True,
            secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")),
        )
    return resp
