"""Liveness and readiness probes."""

from __future__ import annotations

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Blueprint, Response, current_app, jsonify

from mall.errors import error_response
from mall.extensions import db

blp = Blueprint("health", __name__)


@blp.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


def _head_revisions() -> set[str]:
    heads = current_app.extensions.get("mall_migration_heads")
    if heads is None:
        config = current_app.extensions["migrate"].migrate.get_config()
        heads = set(ScriptDirectory.from_config(config).get_heads())
        current_app.extensions["mall_migration_heads"] = heads
    return heads


@blp.get("/readyz")
def readyz() -> Response:
    """Ready when the database answers and its schema is at the migrations' head."""
    try:
        current = set(MigrationContext.configure(db.session.connection()).get_current_heads())
    except Exception:  # any failure to reach the database means "not ready"
        return error_response(503, "service_unavailable", {"database": "unreachable"})
    if current != _head_revisions():
        return error_response(503, "service_unavailable", {"migrations": "not at head"})
    return jsonify({"status": "ready", "database": db.dialect})
