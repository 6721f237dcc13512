"""Bench-only WSGI module: the production app plus one minimal JSON route, the baseline.

`GET /bench/one-row` reads one row (a region, by primary key) through the same engine and
session and answers it as JSON: what Flask + SQLAlchemy + gunicorn cost on this machine with
no business logic. bench/run.py serves `bench.baseline_app:app` so the POS endpoints and the
baseline are measured on the same stack in the same run. Never imported by production code.
"""

from __future__ import annotations

from flask import Response, jsonify
from sqlalchemy import text

from mall import create_app
from mall.extensions import db

app = create_app()


@app.get("/bench/one-row")
def one_row() -> Response:
    row = db.session.execute(text("SELECT id, code, name FROM regions WHERE id = 1")).one()
    return jsonify({"id": row.id, "code": row.code, "name": row.name})
