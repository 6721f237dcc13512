"""A real gunicorn serving the app over real HTTP, on the configured test backend."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from tests.conftest import create_scratch_database

ROOT = Path(__file__).resolve().parents[1]  # the repository (tests/live.py)


@dataclass
class LiveServer:
    url: str
    database_url: str
    manifest: dict[str, Any]
    log_path: Path

    def log_text(self) -> str:
        return self.log_path.read_text("utf-8", errors="replace")


REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def reachable_redis() -> str | None:
    """The tests' Redis URL when a server answers there, else None."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        return None
    return REDIS_URL


def require_redis() -> str:
    """The tests' Redis URL; without a server the test is skipped, or fails under CI."""
    url = reachable_redis()
    if url is None:
        message = f"Redis is not reachable at {REDIS_URL}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return url


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_flask(env: dict[str, str], *args: str) -> None:
    """Run a `flask --app wsgi` command in a child process; its output explains a failure."""
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"flask {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the end-to-end, browser and security tests, which leave the demo
    data usable for each other."""
    with serve(tmp_path_factory, "live") as server:
        yield server


@pytest.fixture(scope="module")
def scratch_live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server of its own, for tests that change the demo data at random (the fuzzer)."""
    with serve(tmp_path_factory, "scratch") as server:
        yield server


@contextlib.contextmanager
def serve(tmp_path_factory: pytest.TempPathFactory, label: str) -> Iterator[LiveServer]:
    """Migrate a scratch database, load the demo, serve it with gunicorn; stop and drop after."""
    tmp = tmp_path_factory.mktemp(label)
    database_url, drop = create_scratch_database(str(tmp), label)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "INFO",
        # The fuzzing and end-to-end runs send bursts; the limits have their own tests.
        "RATELIMIT_ENABLED": os.environ.get("RATELIMIT_ENABLED", "0"),
        # As production is set up: POS nonces in Redis (scans then run without a database
        # transaction); without a reachable Redis the database store serves instead.
        "POS_NONCE_STORE_URL": reachable_redis() or "",
        "RATELIMIT_KEY_PREFIX": f"live{uuid.uuid4().hex[:8]}",
    }
    run_flask(env, "db", "upgrade", "heads")
    manifest_path = tmp / "manifest.json"
    run_flask(env, "demo", "--manifest", str(manifest_path))
    port = _free_port()
    log_path = tmp / "gunicorn.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "wsgi:app",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:  # not listening yet, or still booting
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("gunicorn did not start:\n" + log_path.read_text())
            time.sleep(0.2)
        yield LiveServer(url, database_url, json.loads(manifest_path.read_text("utf-8")), log_path)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        drop()  # type: ignore[operator]
