"""The database goes away under load, and comes back: through a cuttable TCP proxy.

A private gunicorn reaches the machine's PostgreSQL (shared with other tests, so never
restarted here; tests/faults/test_pg_restart.py restarts a server of its own) through a TCP
proxy in this process. Cutting the proxy closes every connection and refuses new ones: a
network partition. The scenario and its checks are tests/faults/outage.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.helpers import Gunicorn, TcpProxy, pg_port, via_proxy
from tests.faults.outage import run_outage, till_and_holders
from tests.live import LiveServer

pytestmark = [pytest.mark.e2e, pytest.mark.postgres_only]


def test_database_cut_and_restored_under_load(
    live_server: LiveServer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    till, holders = till_and_holders(live_server.manifest)
    proxy = TcpProxy(pg_port(live_server.database_url))
    log = tmp_path / "gunicorn.log"
    server = Gunicorn(via_proxy(live_server.database_url, proxy), log)
    request.addfinalizer(proxy.close)  # also when an assertion fails before the cleanup below
    request.addfinalizer(server.stop)
    try:
        run_outage(
            server.url, live_server.database_url, log, till, holders, proxy.cut, proxy.restore
        )
    finally:
        server.stop()
        proxy.close()
    assert "WORKER TIMEOUT" not in log.read_text("utf-8", errors="replace")
