"""PostgreSQL restarted under load: a real server shutdown and start-up, not a simulation.

A PostgreSQL cluster of this test's own (tests/faults/private_pg.py: initdb, its own port,
the machine's Debian binaries), migrated and filled with the demo county, serves a private
gunicorn while three clients scan and pay. The server is stopped (`pg_ctl stop -m fast`:
open transactions rolled back, every connection closed, new ones refused) and, after a few
seconds, started again. Meanwhile every answer is 200/201 or 503 `service_unavailable` in the
envelope, never a 500 or a hang; afterwards the service recovers by itself (the
request that meets a dead connection answers 503 and SQLAlchemy replaces the pool's
connections), each payment key retried exists exactly once, and
`flask verify` passes on the ledger. A second run stops it with `-m immediate` (no clean
shutdown: start-up replays the WAL) and checks the same.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.helpers import Gunicorn
from tests.faults.outage import run_outage, till_and_holders
from tests.faults.private_pg import PrivatePostgres, binaries
from tests.live import run_flask

pytestmark = [pytest.mark.e2e, pytest.mark.postgres_only]


@pytest.fixture(scope="module")
def private_pg() -> Iterator[tuple[PrivatePostgres, dict]]:
    if binaries() is None:
        pytest.skip("no PostgreSQL server binaries (initdb) on this machine")
    # Not under pytest's tmp_path: that is private to root, and the server runs as postgres.
    pg = PrivatePostgres(Path(tempfile.mkdtemp(prefix="mall-private-pg-")))
    try:
        env = {**os.environ, "DATABASE_URL": pg.url, "LOG_LEVEL": "WARNING"}
        run_flask(env, "db", "upgrade", "heads")
        manifest = pg.dir / "manifest.json"
        run_flask(env, "demo", "--manifest", str(manifest))
        yield pg, json.loads(manifest.read_text("utf-8"))
    finally:
        pg.destroy()


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_postgresql_restarted_under_load(
    private_pg: tuple[PrivatePostgres, dict],
    mode: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    pg, manifest = private_pg
    till, holders = till_and_holders(manifest)
    log = tmp_path / "gunicorn.log"
    server = Gunicorn(pg.url, log)
    request.addfinalizer(server.stop)
    request.addfinalizer(lambda: pg.start() if not (pg.data / "postmaster.pid").exists() else None)
    try:
        answers = run_outage(
            server.url, pg.url, log, till, holders, lambda: pg.stop(mode), pg.start
        )
        print(f"\n{mode}: {dict(answers)}")
    finally:
        server.stop()
    assert "WORKER TIMEOUT" not in log.read_text("utf-8", errors="replace")
    run_flask({**os.environ, "DATABASE_URL": pg.url, "LOG_LEVEL": "WARNING"}, "verify")
