"""Bench-only WSGI module: the production app plus two minimal JSON routes, the baselines.

- `GET /bench/one-row` reads one row (a region, by primary key) through the same engine and
  session and answers it as JSON: what Flask + SQLAlchemy + gunicorn cost on this machine
  with no business logic; the baseline for reads (scan).
- `POST /bench/one-write` inserts one row into `bench_writes` (a table bench/run.py creates in
  its scratch database) and commits it durably: the same plus one commit's WAL flush, the
  baseline for writes (payments). A payment waits for the disk too, and this machine's disk
  is shared: without a write baseline a slow fsync would look like slow code.

bench/run.py serves `bench.baseline_app:app` so the POS endpoints and the baselines are
measured on the same stack in the same run. Never imported by production code.
"""

from __future__ import annotations

from flask import Response, jsonify
from sqlalchemy import text

from mall.extensions import db
from mall.web.app import create_app

app = create_app()


@app.get("/bench/one-row")
def one_row() -> Response:
    row = db.session.execute(text("SELECT id, code, name FROM regions WHERE id = 1")).one()
    return jsonify({"id": row.id, "code": row.code, "name": row.name})


@app.post("/bench/one-write")
def one_write() -> tuple[Response, int]:
    new_id = db.session.execute(
        text("INSERT INTO bench_writes (note) VALUES ('bench') RETURNING id")
    ).scalar_one()
    db.session.commit()
    return jsonify({"id": new_id}), 201
