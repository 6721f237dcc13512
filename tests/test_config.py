from __future__ import annotations

import base64

import pytest

from mall.config import Config, ConfigError, check_shared_rate_limits
from mall.web.app import create_app


def test_production_refuses_default_secrets_and_names_them() -> None:
    with pytest.raises(ConfigError) as info:
        create_app(Config({"MALL_ENV": "production", "DATABASE_URL": "sqlite://"}))
    for name in ("SECRET_KEY", "JWT_SECRET", "ENCRYPTION_KEY", "BLIND_INDEX_KEY"):
        assert name in str(info.value)


def test_production_starts_with_real_secrets() -> None:
    env = {
        "MALL_ENV": "production",
        "DATABASE_URL": "sqlite://",
        "SECRET_KEY": "s" * 40,
        "JWT_SECRET": "j" * 40,
        "ENCRYPTION_KEY": base64.urlsafe_b64encode(b"k" * 32).decode(),
        "BLIND_INDEX_KEY": "b" * 40,
    }
    app = create_app(Config(env))
    assert app.config["SESSION_COOKIE_SECURE"] is True


def test_defaults() -> None:
    config = Config({})
    assert config.DATABASE_URL.startswith("sqlite:///")
    assert config.DATABASE_URL.endswith("instance/mall.db")
    assert config.TIMEZONE == "Asia/Shanghai"
    assert config.BABEL_DEFAULT_LOCALE == "zh_CN"


# --- rate limits shared by the workers (gunicorn.conf.py calls this before they start) -------


PRODUCTION = {"MALL_ENV": "production"}


@pytest.mark.parametrize("storage", [None, "", "memory://", "MEMORY://"])
def test_production_refuses_per_process_rate_limits_with_several_workers(
    storage: str | None,
) -> None:
    env = dict(PRODUCTION)
    if storage is not None:
        env["RATELIMIT_STORAGE_URI"] = storage
    with pytest.raises(ConfigError) as info:
        check_shared_rate_limits(env, 3)
    assert "RATELIMIT_STORAGE_URI" in str(info.value)
    assert "GUNICORN_WORKERS" in str(info.value)


@pytest.mark.parametrize(
    ("env", "workers"),
    [
        ({**PRODUCTION, "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0"}, 3),
        (PRODUCTION, 1),  # one process counts for itself correctly
        ({**PRODUCTION, "RATELIMIT_ENABLED": "0"}, 3),  # nothing counted
        ({}, 3),  # development
    ],
)
def test_shared_or_single_process_rate_limits_pass(env: dict[str, str], workers: int) -> None:
    check_shared_rate_limits(env, workers)
