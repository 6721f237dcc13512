from __future__ import annotations

import base64

import pytest

from mall.config import Config, ConfigError
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
