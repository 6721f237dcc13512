"""gunicorn in production mode refuses rate limits counted per worker process.

With the default `memory://` storage each worker counts alone (three workers: three times
every limit), so `gunicorn -c gunicorn.conf.py` with MALL_ENV=production and more than one
worker exits before any worker starts, naming RATELIMIT_STORAGE_URI (mall/config.py,
`check_shared_rate_limits`, called from gunicorn.conf.py's `on_starting`). With Redis it starts,
and the workers share one count; one worker may keep `memory://`.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import create_scratch_database
from tests.live import ROOT, _free_port, require_redis, run_flask

pytestmark = pytest.mark.e2e


def _production_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("RATELIMIT_", "GUNICORN_", "MALL_", "WEB_CONCURRENCY"))
    }
    return {
        **env,
        "MALL_ENV": "production",
        "SECRET_KEY": "s" * 40,
        "JWT_SECRET": "j" * 40,
        "ENCRYPTION_KEY": base64.urlsafe_b64encode(b"k" * 32).decode(),
        "BLIND_INDEX_KEY": "b" * 40,
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def _gunicorn(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    # No --workers: GUNICORN_WORKERS (read by gunicorn.conf.py) decides, as in production.
    with log.open("w") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{port}",
                "wsgi:app",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _wait_healthy(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:  # still booting
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            raise AssertionError("gunicorn did not start:\n" + log.read_text())
        time.sleep(0.2)


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, drop = create_scratch_database(str(tmp_path_factory.mktemp("prod")), "prod")
    run_flask({**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "WARNING"}, "db", "upgrade", "heads")
    yield url
    drop()  # type: ignore[operator]


@pytest.mark.parametrize("storage", [None, "memory://"])
def test_production_refuses_per_process_limits_with_two_workers(
    database_url: str, tmp_path: Path, storage: str | None
) -> None:
    extra = {"GUNICORN_WORKERS": "2"}
    if storage is not None:
        extra["RATELIMIT_STORAGE_URI"] = storage
    log = tmp_path / "gunicorn.log"
    proc = _gunicorn(_production_env(database_url, **extra), _free_port(), log)
    try:
        assert proc.wait(timeout=30) == 1
    finally:
        if proc.poll() is None:
            _stop(proc)
    text = log.read_text()
    assert "refusing to start in production: RATELIMIT_STORAGE_URI=memory://" in text, text
    assert "GUNICORN_WORKERS" in text
    assert "Booting worker" not in text  # refused before any worker started


def test_production_starts_with_redis_and_the_workers_share_the_count(
    database_url: str, tmp_path: Path
) -> None:
    redis_url = require_redis()
    port = _free_port()
    url, log = f"http://127.0.0.1:{port}", tmp_path / "gunicorn.log"
    env = _production_env(
        database_url,
        GUNICORN_WORKERS="2",
        RATELIMIT_STORAGE_URI=redis_url,
        RATELIMIT_KEY_PREFIX=f"prod{uuid.uuid4().hex[:8]}",
        RATELIMIT_LOGIN="3/minute",
    )
    proc = _gunicorn(env, port, log)
    try:
        _wait_healthy(proc, url, log)
        statuses = [
            requests.post(
                url + "/api/v1/auth/farmer/login",
                json={"phone": f"1390000000{n}", "pin": "000000"},
                headers={"Connection": "close"},  # the two workers take turns
                timeout=10,
            ).status_code
            for n in range(5)
        ]
        assert statuses == [401, 401, 401, 429, 429], statuses
    finally:
        _stop(proc)


def test_production_keeps_memory_limits_with_one_worker(database_url: str, tmp_path: Path) -> None:
    port = _free_port()
    log = tmp_path / "gunicorn.log"
    proc = _gunicorn(_production_env(database_url, GUNICORN_WORKERS="1"), port, log)
    try:
        _wait_healthy(proc, f"http://127.0.0.1:{port}", log)
    finally:
        _stop(proc)
