"""Extensions live here at module level and are bound to an app in `create_app`."""

from __future__ import annotations

from flask import request
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_wtf import CSRFProtect

from mall.api_common import MallApi
from mall.db import Database

SUPPORTED_LOCALES = ("zh_CN", "en")

db = Database()
migrate = Migrate()
babel = Babel()
csrf = CSRFProtect()
api = MallApi()
# Limits, storage and headers come from the app config (RATELIMIT_*); see mall.ratelimits.
limiter = Limiter(get_remote_address)


def select_locale() -> str:
    """zh-CN unless the caller asks for English (`?lang=en`, a `lang` cookie, Accept-Language)."""
    for candidate in (request.args.get("lang"), request.cookies.get("lang")):
        if candidate:
            normalized = candidate.replace("-", "_")
            if normalized.lower().startswith("en"):
                return "en"
            if normalized.lower().startswith("zh"):
                return "zh_CN"
    best = request.accept_languages.best_match(["zh", "zh-CN", "en"], default="zh-CN")
    return "en" if best and best.startswith("en") else "zh_CN"
