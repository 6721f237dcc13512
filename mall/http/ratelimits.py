"""Request rate limits (Flask-Limiter), listed in one place.

Which endpoints are limited, by what key, and how much, is the table `LIMITED` below; the
amounts come from the configuration (`RATELIMIT_LOGIN`, `RATELIMIT_LOGIN_PHONE`,
`RATELIMIT_SCAN`, `RATELIMIT_FARMER_CODE`, see `mall.config`). The limits are attached to
the registered view functions when the app is created, so the views themselves (some owned
by other packages) need not know about them. A request over its limit answers 429
`rate_limited` in the error envelope, with `Retry-After` and the `X-RateLimit-*` headers.

These limits blunt floods; they are not the login lockout (5 failures lock one identifier,
`mall.auth.throttle`), which works per account whatever the address.

Farmer logins (the API's and the /m/ page's: both check a PIN for a login) share two
allowances across both paths: one per address (`RATELIMIT_LOGIN`, so an address has 20 a
minute in all, not 20 on each path) and one per phone number (`RATELIMIT_LOGIN_PHONE`, every
spelling of the number counted together). The lockout alone lets a phone be guessed 5 times
every 15 minutes for ever (about 480 a day from addresses that change), and does not stop a
burst that arrives before the first failure is written; the per-phone allowance counts every
attempt before the PIN is checked (atomically, in Redis in production), 5 a minute and 30 a
day by default. The price: whoever knows a phone number can spend its allowance and keep that
number from logging in until the day's window ends, as they can already keep it locked out 15
minutes at a time. That stops new logins only: open app and page sessions, the dynamic code
and card payments at the till (whose PIN counts separately, `mall.codes.services`) go on; and
an admin's PIN reset or unlock (/admin/households/<ref>/pin) clears both the lockout and the
allowance (`clear_phone_login_limits`). The cashier's card PIN entry counts on its own as before.

Storage: `RATELIMIT_STORAGE_URI`, "memory://" by default, which counts per process. In
production with several gunicorn workers each worker would count on its own, so use Redis
there, e.g. `RATELIMIT_STORAGE_URI=redis://127.0.0.1:6379/0` (needs the `redis` package).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from flask import Flask, Response, current_app, request, session
from flask_limiter.errors import RateLimitExceeded
from limits import parse_many

from mall.auth.throttle import form_phone, phone_limit_key
from mall.errors import error_response
from mall.http.extensions import limiter

log = structlog.get_logger(__name__)

DEFAULT_LOGIN_LIMIT = "20/minute"
DEFAULT_LOGIN_PHONE_LIMIT = "5/minute;30/day"
DEFAULT_SCAN_LIMIT = "600/minute"
DEFAULT_FARMER_CODE_LIMIT = "30/minute"
DEFAULT_PICKUP_MISSES_LIMIT = "30/hour"


def client_ip() -> str:
    """The caller's address. Behind `RATELIMIT_TRUSTED_PROXIES` reverse proxies (each
    appending to X-Forwarded-For), the address the nearest of them saw; else the peer."""
    hops = int(current_app.config.get("RATELIMIT_TRUSTED_PROXIES", 0) or 0)
    if hops > 0:
        forwarded = [
            part.strip()
            for part in request.headers.get("X-Forwarded-For", "").split(",")
            if part.strip()
        ]
        if len(forwarded) >= hops:
            return forwarded[-hops][:64]
    return request.remote_addr or "unknown"


def terminal_key() -> str:
    """Per terminal (the X-Terminal-Id header; refusals of unsigned requests do not count,
    see `_authenticated`, so nobody can spend another terminal's allowance)."""
    return "terminal:" + request.headers.get("X-Terminal-Id", "")[:40]


def farmer_key() -> str:
    """Per household: the bearer token (API) or the page session's household; else the
    address. A keyed digest, so the storage never holds a token."""
    token = request.headers.get("Authorization", "")
    if token:
        return "farmer-token:" + hashlib.sha256(token.encode()).hexdigest()[:32]
    ref = session.get("farmer_ref")
    if isinstance(ref, str):
        return "farmer:" + ref
    return "ip:" + client_ip()


def login_phone_key() -> str:
    """Per phone number, whichever farmer login path it came through: the phone as that path
    reads it (the page keeps its digits, the API takes the JSON field), keyed as the login
    looks it up. No phone: "" (Flask-Limiter skips the limit; the login refuses the request
    before any PIN is checked)."""
    if request.endpoint == "farmer_pages.login":
        phone: object = form_phone(request.form.get("phone", ""))
    else:
        body = request.get_json(silent=True)
        phone = body.get("phone") if isinstance(body, dict) else None
    if not isinstance(phone, str) or not phone.strip() or len(phone) > 32:
        return ""
    return phone_limit_key(phone)


def _authenticated(response: Response) -> bool:
    return response.status_code != 401


@dataclass(frozen=True)
class Configured:
    """A limit read from the app configuration at request time (equal instances compare
    equal, so an app created twice does not register the same limit twice)."""

    name: str
    default: str

    def __call__(self) -> str:
        return str(current_app.config.get(self.name) or self.default)


@dataclass(frozen=True)
class Rule:
    endpoint: str
    limit: Configured
    key: Callable[[], str]
    methods: tuple[str, ...] = ("POST",)
    deduct_when: Callable[[Response], bool] | None = None
    # Rules of one scope share one count across their endpoints (Flask-Limiter shared_limit).
    scope: str | None = None


LOGIN = Configured("RATELIMIT_LOGIN", DEFAULT_LOGIN_LIMIT)
LOGIN_PHONE = Configured("RATELIMIT_LOGIN_PHONE", DEFAULT_LOGIN_PHONE_LIMIT)
FARMER_LOGIN_SCOPE = "farmer-login"
FARMER_LOGIN_PHONE_SCOPE = "farmer-login-phone"
SCAN = Configured("RATELIMIT_SCAN", DEFAULT_SCAN_LIMIT)
FARMER_CODE = Configured("RATELIMIT_FARMER_CODE", DEFAULT_FARMER_CODE_LIMIT)
# Wrong pickup codes (mall.reservations): only lookups that find nothing count, so a busy
# till is never slowed, while guessing another household's code stays impractical.
PICKUP_MISSES = Configured("RATELIMIT_PICKUP_MISSES", DEFAULT_PICKUP_MISSES_LIMIT)


def _not_found(response: Response) -> bool:
    return response.status_code == 404


LIMITED: tuple[Rule, ...] = (
    # farmer logins, API and page together: per address and per phone (the lockout counts
    # failures per phone besides)
    Rule("auth.FarmerLogin", LOGIN, client_ip, scope=FARMER_LOGIN_SCOPE),
    Rule("farmer_pages.login", LOGIN, client_ip, scope=FARMER_LOGIN_SCOPE),
    Rule("auth.FarmerLogin", LOGIN_PHONE, login_phone_key, scope=FARMER_LOGIN_PHONE_SCOPE),
    Rule("farmer_pages.login", LOGIN_PHONE, login_phone_key, scope=FARMER_LOGIN_PHONE_SCOPE),
    # staff logins, per address and endpoint (the lockout counts per account besides)
    Rule("auth.StaffLogin", LOGIN, client_ip),
    Rule("admin.login", LOGIN, client_ip),
    Rule("cashier.login", LOGIN, client_ip),
    # the till's scan, per terminal
    Rule("pos.scan", SCAN, terminal_key, deduct_when=_authenticated),
    # the farmer's dynamic code, per household
    Rule("farmer.MyCode", FARMER_CODE, farmer_key, ("GET",), _authenticated),
    Rule("farmer_pages.code_json", FARMER_CODE, farmer_key, ("GET",), _authenticated),
    # pickup codes that match nothing, per terminal (POS API) or per address (cashier page)
    Rule("pos_reservations.get_reservation", PICKUP_MISSES, terminal_key, ("GET",), _not_found),
    Rule("pos_reservations.pickup", PICKUP_MISSES, terminal_key, ("POST",), _not_found),
    Rule("cashier.pickup", PICKUP_MISSES, client_ip, ("GET",), _not_found),
)


def rate_limited(exc: RateLimitExceeded) -> Response:
    """429 in the error envelope; Flask-Limiter adds Retry-After and X-RateLimit-* after."""
    return error_response(429, "rate_limited", {"limit": str(exc.limit.limit)})


def apply_rate_limits(app: Flask) -> None:
    """Attach the limits of `LIMITED` to the app's registered views (after the blueprints).
    Nothing is attached when `RATELIMIT_ENABLED` is off (the default in tests)."""
    app.register_error_handler(RateLimitExceeded, rate_limited)
    if not app.config.get("RATELIMIT_ENABLED", True):
        return
    for rule in LIMITED:
        view = app.view_functions.get(rule.endpoint)
        if view is None:
            continue
        options: dict[str, Any] = {
            "key_func": rule.key,
            "methods": list(rule.methods),
            "deduct_when": rule.deduct_when,
        }
        if rule.scope is None:
            decorator = limiter.limit(rule.limit, **options)
        else:
            decorator = limiter.shared_limit(rule.limit, rule.scope, **options)
        limited: Any = decorator(view)
        app.view_functions[rule.endpoint] = limited


def clear_phone_login_limits(phone: str) -> None:
    """Give a phone number its farmer login allowance back (an admin reset or unlocked the
    household's PIN after checking who they are). Best effort: the limiter's storage being
    unreachable must not fail the admin's action, whose lockout reset is in the database."""
    if not current_app.config.get("RATELIMIT_ENABLED", True):
        return
    prefix = str(current_app.config.get("RATELIMIT_KEY_PREFIX") or "")
    identifiers = [phone_limit_key(phone), FARMER_LOGIN_PHONE_SCOPE]
    if prefix:
        identifiers.insert(0, prefix)
    try:
        for item in parse_many(LOGIN_PHONE()):
            limiter.limiter.clear(item, *identifiers)
    except Exception:  # any storage failure: logged, and the reset goes on
        log.warning("phone_login_limit_not_cleared", exc_info=True)
