"""Settings of the credit-code domain, read from the app config with their defaults.

`mall.config.Config` may set any of these from the environment; until it does, the defaults
below apply. One accessor per setting so every reader agrees on the default.
"""

from __future__ import annotations

from flask import current_app

DEFAULT_LIFETIME_SECONDS = 60
DEFAULT_ALLOWED_SKEW_SECONDS = 10
DEFAULT_OFFLINE_FLOOR_LIMIT_FEN = 5000
# Card codes offline: no PIN can be checked, so a smaller floor of its own (docs/pos-api.md 6).
DEFAULT_OFFLINE_CARD_FLOOR_LIMIT_FEN = 2000
DEFAULT_KEY_CACHE_SECONDS = 10
PIN_MAX_FAILURES = 5
PIN_LOCK_SECONDS = 30 * 60


def _int(name: str, default: int) -> int:
    return int(current_app.config.get(name, default))


def code_lifetime_seconds() -> int:
    return _int("CODE_LIFETIME_SECONDS", DEFAULT_LIFETIME_SECONDS)


def allowed_skew_seconds() -> int:
    return _int("CODE_ALLOWED_SKEW_SECONDS", DEFAULT_ALLOWED_SKEW_SECONDS)


def offline_floor_limit_fen() -> int:
    return _int("OFFLINE_FLOOR_LIMIT_FEN", DEFAULT_OFFLINE_FLOOR_LIMIT_FEN)


def offline_card_floor_limit_fen() -> int:
    """Integrity discount a till may grant offline on card codes (no PIN checked) per
    household per business day; within, not on top of, `offline_floor_limit_fen`. 0: no
    discount on card codes offline."""
    return _int("OFFLINE_CARD_FLOOR_LIMIT_FEN", DEFAULT_OFFLINE_CARD_FLOOR_LIMIT_FEN)


def key_cache_seconds() -> int:
    """How long a process trusts its loaded keys before re-checking the table's version.

    Tests run with TESTING and a rolled-back transaction per test, so they re-check always.
    """
    default = 0 if current_app.config.get("TESTING") else DEFAULT_KEY_CACHE_SECONDS
    return _int("CODE_KEY_CACHE_SECONDS", default)
