"""A scratch PostgreSQL database for a bench script: created, migrated to every head, served
to the block through an app context, dropped afterwards (unless kept)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from mall.config import Config
from mall.extensions import db
from mall.web.app import create_app


@contextlib.contextmanager
def scratch_app(base_url: str, label: str, *, keep: bool = False) -> Iterator[Flask]:
    name = f"mall_{label}_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin_url = make_url(base_url).set(drivername="postgresql+psycopg")
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = admin_url.set(database=name).render_as_string(hide_password=False)
        app = create_app(Config({"DATABASE_URL": url, "LOG_LEVEL": "WARNING"}))
        with app.app_context():
            upgrade(revision="heads")
            yield app
            db.session.remove()
            db.engine.dispose()
    finally:
        if keep:
            print(f"kept database {name}")
        else:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
