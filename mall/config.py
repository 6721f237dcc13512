"""Configuration read explicitly from the environment.

Every setting has one name, one default and one place where it is read. Production mode
(`MALL_ENV=production`) refuses to start while any secret is missing or still the default,
and gunicorn (gunicorn.conf.py) refuses to start several production workers that would each
count rate limits on their own (`check_shared_rate_limits`).

Only the standard library here: gunicorn.conf.py loads this file by itself, in the master,
without importing the app.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from pathlib import Path

# Development defaults: fine for a laptop, refused in production.
_DEV_SECRET_KEY = "dev-secret-key-not-for-production"  # noqa: S105 (refused in production)
_DEV_JWT_SECRET = "dev-jwt-secret-not-for-production-0123456789"  # noqa: S105 (refused in production)
# 32 bytes, urlsafe base64: the key that encrypts personal data at rest.
_DEV_ENCRYPTION_KEY = base64.urlsafe_b64encode(b"dev-encryption-key-32-bytes!!!!!").decode()
_DEV_BLIND_INDEX_KEY = "dev-blind-index-key-not-for-production"

ROOT = Path(__file__).resolve().parent.parent
# Flask-Limiter's counters in each process's memory: right for one process only.
DEFAULT_RATELIMIT_STORAGE_URI = "memory://"


class ConfigError(RuntimeError):
    """Raised when the environment does not describe a startable service."""


def _default_database_url() -> str:
    instance = ROOT / "instance"
    instance.mkdir(exist_ok=True)
    return f"sqlite:///{instance / 'mall.db'}"


class Config:
    """Settings for one app instance; tests pass their own overrides to `create_app`."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        e = os.environ if env is None else env
        self.ENV = e.get("MALL_ENV", "development")
        self.SECRET_KEY = e.get("SECRET_KEY", _DEV_SECRET_KEY)
        self.JWT_SECRET = e.get("JWT_SECRET", _DEV_JWT_SECRET)
        self.ENCRYPTION_KEY = e.get("ENCRYPTION_KEY", _DEV_ENCRYPTION_KEY)
        self.BLIND_INDEX_KEY = e.get("BLIND_INDEX_KEY", _DEV_BLIND_INDEX_KEY)
        self.DATABASE_URL = e.get("DATABASE_URL") or _default_database_url()
        self.DATABASE_POOL_PRE_PING = e.get("DATABASE_POOL_PRE_PING", "0") == "1"
        self.TIMEZONE = e.get("MALL_TIMEZONE", "Asia/Shanghai")
        self.BABEL_DEFAULT_LOCALE = e.get("MALL_LOCALE", "zh_CN")
        self.BABEL_DEFAULT_TIMEZONE = self.TIMEZONE
        self.LOG_LEVEL = e.get("LOG_LEVEL", "INFO")
        self.LOG_JSON = e.get("LOG_JSON", "1" if self.ENV == "production" else "0") == "1"
        # Bodies larger than this are refused with 413 in the envelope before parsing.
        self.MAX_CONTENT_LENGTH = int(e.get("MAX_CONTENT_LENGTH", str(2 * 1024 * 1024)))
        self.ACCESS_TOKEN_SECONDS = int(e.get("ACCESS_TOKEN_SECONDS", "900"))
        self.REFRESH_TOKEN_SECONDS = int(e.get("REFRESH_TOKEN_SECONDS", str(30 * 86400)))
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.SESSION_COOKIE_SECURE = self.ENV == "production"
        self.WTF_CSRF_TIME_LIMIT = None  # tied to the session instead of a clock
        # The JSON APIs authenticate with bearer tokens or HMAC signatures, never cookies,
        # so CSRF protection applies to the admin pages only (checked per blueprint).
        self.WTF_CSRF_CHECK_DEFAULT = False
        # flask-smorest / OpenAPI
        self.API_TITLE = "Credit Mall 信用积分商城"
        self.API_VERSION = "v1"
        self.OPENAPI_VERSION = "3.0.3"
        self.OPENAPI_URL_PREFIX = "/"
        self.OPENAPI_JSON_PATH = "openapi.json"
        self.OPENAPI_SWAGGER_UI_PATH = "/docs"
        self.OPENAPI_SWAGGER_UI_URL = e.get(
            "SWAGGER_UI_URL", "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/"
        )
        # Credit codes (mall/codes/policy.py holds the defaults and the accessors).
        for name in (
            "CODE_LIFETIME_SECONDS",
            "CODE_ALLOWED_SKEW_SECONDS",
            "OFFLINE_FLOOR_LIMIT_FEN",
            "OFFLINE_CARD_FLOOR_LIMIT_FEN",
            "CODE_KEY_CACHE_SECONDS",
        ):
            if e.get(name):
                setattr(self, name, int(e[name]))
        # Rate limits (mall/http/ratelimits.py). "memory://" counts per process: with several
        # gunicorn workers use Redis, e.g. RATELIMIT_STORAGE_URI=redis://127.0.0.1:6379/0.
        self.RATELIMIT_ENABLED = e.get("RATELIMIT_ENABLED", "1") == "1"
        self.RATELIMIT_STORAGE_URI = e.get("RATELIMIT_STORAGE_URI", DEFAULT_RATELIMIT_STORAGE_URI)
        self.RATELIMIT_HEADERS_ENABLED = True
        self.RATELIMIT_KEY_PREFIX = e.get("RATELIMIT_KEY_PREFIX", "mall")
        self.RATELIMIT_TRUSTED_PROXIES = int(e.get("RATELIMIT_TRUSTED_PROXIES", "0"))
        self.RATELIMIT_LOGIN = e.get("RATELIMIT_LOGIN", "20/minute")
        self.RATELIMIT_LOGIN_PHONE = e.get("RATELIMIT_LOGIN_PHONE", "5/minute;30/day")
        self.RATELIMIT_SCAN = e.get("RATELIMIT_SCAN", "600/minute")
        self.RATELIMIT_FARMER_CODE = e.get("RATELIMIT_FARMER_CODE", "30/minute")
        # POS request nonces (pos_adapter/nonces.py): "" keeps them in the database; a
        # redis:// URL keeps them in Redis, one SET NX EX per request instead of a database write.
        self.POS_NONCE_STORE_URL = e.get("POS_NONCE_STORE_URL", "")
        # How long a worker may keep a terminal's row or a partner's benefit list for reads
        # such as a scan (mall/cache.py); writes always read afresh. 0 turns the caches off.
        self.HOT_CACHE_SECONDS = int(e.get("HOT_CACHE_SECONDS", "5"))
        if e.get("CARD_FONT_PATH"):
            self.CARD_FONT_PATH = e["CARD_FONT_PATH"]
        self.TESTING = False

    def check_production(self) -> None:
        """Refuse to run in production with any default or missing secret, naming each."""
        if self.ENV != "production":
            return
        bad = [
            name
            for name, value, default in (
                ("SECRET_KEY", self.SECRET_KEY, _DEV_SECRET_KEY),
                ("JWT_SECRET", self.JWT_SECRET, _DEV_JWT_SECRET),
                ("ENCRYPTION_KEY", self.ENCRYPTION_KEY, _DEV_ENCRYPTION_KEY),
                ("BLIND_INDEX_KEY", self.BLIND_INDEX_KEY, _DEV_BLIND_INDEX_KEY),
            )
            if not value or value == default or len(value) < 32
        ]
        if bad:
            raise ConfigError(
                "refusing to start in production: set strong values (32+ characters) for "
                + ", ".join(bad)
            )
        try:
            if len(base64.urlsafe_b64decode(self.ENCRYPTION_KEY)) != 32:
                raise ValueError
        except ValueError as exc:
            raise ConfigError("ENCRYPTION_KEY must be 32 bytes, urlsafe base64") from exc

    def as_dict(self) -> dict[str, object]:
        return {k: v for k, v in vars(self).items() if k.isupper()}


def check_shared_rate_limits(env: Mapping[str, str], workers: int) -> None:
    """Refuse a production server of several worker processes whose rate limits are counted
    in each process's memory: every worker would allow the whole limit on its own (with 3
    workers, 90 dynamic codes a minute instead of 30, 3 times the login guesses). gunicorn
    calls this before it starts the workers (gunicorn.conf.py, `on_starting`), since the app
    cannot know how many there are. Shared storage (Redis) or a single worker passes."""
    if env.get("MALL_ENV", "development") != "production" or workers <= 1:
        return
    if env.get("RATELIMIT_ENABLED", "1") != "1":
        return  # no limits at all: nothing to count apart
    uri = env.get("RATELIMIT_STORAGE_URI") or DEFAULT_RATELIMIT_STORAGE_URI
    if uri.strip().lower().startswith("memory://"):
        raise ConfigError(
            f"refusing to start in production: RATELIMIT_STORAGE_URI={uri} counts rate limits"
            f" in each worker process, and {workers} workers (GUNICORN_WORKERS) would each allow"
            " the full limit; set RATELIMIT_STORAGE_URI to a shared store, e.g."
            " redis://127.0.0.1:6379/0, or run one worker (GUNICORN_WORKERS=1)"
        )
