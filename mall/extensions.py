"""The database extensions, at module level and bound to an app in `create_app` (the web
layer's extensions are in mall.http.extensions)."""

from __future__ import annotations

from flask_migrate import Migrate

from mall.db import Database

db = Database()
migrate = Migrate()
