"""Farmer `GET /api/v1/me` throughput in one process: what checking the access token costs.

    .venv/bin/python bench/me_bench.py [--requests 2000] [--rounds 3] [--database URL]

A scratch PostgreSQL database (bench/scratch.py), one household logged in through the API,
then Flask's test client calls `/api/v1/me` with its access token `--requests` times per
round, after a warm-up. Prints one JSON line per round: requests per second (wall clock) and
CPU milliseconds per request. No network and no gunicorn: the figure is the app's own cost per
request (token check, the household's row, its wallets), which is where a per-request session
check would show. It uses only what every version of the app has (create_app, the login
endpoint, /me), so the same file measures an older checkout for comparison: issue 19's session
generation was measured so, old and new alternating (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import time

from bench.scratch import scratch_app
from mall.extensions import db
from mall.regions.services import create_region
from mall.subjects.services import create_household

PHONE = "13800138000"
PIN = "135790"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    with scratch_app(args.database, "me") as app:
        session = db.session()
        county = create_region(session, kind="county", code="B", name="基准县")
        town = create_region(session, kind="township", code="BT", name="基准镇", parent=county)
        village = create_region(session, kind="village", code="BTV", name="基准村", parent=town)
        create_household(session, village=village, head_name="张建华", phone=PHONE, pin=PIN)
        session.commit()
        db.session.remove()
        client = app.test_client()
        login = client.post("/api/v1/auth/farmer/login", json={"phone": PHONE, "pin": PIN})
        assert login.status_code == 200, login.get_json()
        headers = {"Authorization": "Bearer " + login.get_json()["access_token"]}
        for _ in range(args.warmup):
            assert client.get("/api/v1/me", headers=headers).status_code == 200
        for round_no in range(1, args.rounds + 1):
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(args.requests):
                resp = client.get("/api/v1/me", headers=headers)
                assert resp.status_code == 200, resp.get_json()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            print(
                json.dumps(
                    {
                        "label": args.label,
                        "round": round_no,
                        "requests": args.requests,
                        "rps": round(args.requests / wall, 1),
                        "cpu_ms_per_request": round(cpu / args.requests * 1000, 3),
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
