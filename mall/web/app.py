"""The application factory. Short and pure: no database access at import or start-up."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import structlog
from flask import Flask, Response, g, request
from werkzeug.routing import IntegerConverter, Map

from mall import models  # noqa: F401  (registers every domain table on the metadata)
from mall.auth.services import on_phone_unlocked
from mall.config import Config
from mall.errors import register_error_handlers
from mall.extensions import db, migrate
from mall.http.extensions import api, babel, csrf, limiter, select_locale
from mall.http.ratelimits import apply_rate_limits, clear_phone_login_limits
from mall.jobs.services import register_step
from mall.logging import configure_logging
from pos_adapter import models as pos_models  # noqa: F401  (the till's nonce and key stores)
from pos_adapter.maintenance import prune_pos_stores


class BigIntConverter(IntegerConverter):
    def __init__(self, url_map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", 2**63 - 1)
        super().__init__(url_map, *args, **kwargs)


MALL_DIR = Path(__file__).resolve().parents[1]
MIGRATIONS_DIR = str(MALL_DIR.parent / "migrations")
_API_PREFIXES = ("/api/", "/pos/")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def create_app(config: Config | None = None, **overrides: object) -> Flask:
    config = config or Config()
    config.check_production()
    # Rooted at the mall package, as before the wiring moved: its static/ and translations/.
    app = Flask(__name__, root_path=str(MALL_DIR), instance_relative_config=False)
    app.config.update(config.as_dict())
    app.config.update(overrides)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    # Every `<int:...>` route parameter fits a BIGINT; a larger number simply matches no route.
    app.url_map.converters["int"] = BigIntConverter

    configure_logging(app.config["LOG_LEVEL"], app.config["LOG_JSON"])
    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR, render_as_batch=True, compare_type=True)
    babel.init_app(
        app,
        locale_selector=select_locale,
        default_translation_directories=str(MALL_DIR / "translations"),
    )
    csrf.init_app(app)
    api.init_app(app)

    _register_blueprints(app)
    limiter.init_app(app)
    apply_rate_limits(app)  # after the blueprints: limits attach to their views
    _register_cli(app)
    register_step("pos_stores_pruning", prune_pos_stores)
    on_phone_unlocked("rate_limits", clear_phone_login_limits)
    register_error_handlers(app)  # after api.init_app: ours replace smorest's handlers
    _request_context(app)
    return app


def _register_blueprints(app: Flask) -> None:
    from mall.api.audit.views import blp as audit_blp
    from mall.api.health.views import blp as health_blp
    from mall.api.regions.views import blp as regions_blp
    from mall.api.subjects.views import blp as households_blp
    from mall.api.users.views import blp as users_blp

    app.register_blueprint(health_blp)
    for staff_blp in (regions_blp, households_blp, users_blp, audit_blp):
        api.register_blueprint(staff_blp)
    from mall.api.auth.views import blp as auth_blp

    api.register_blueprint(auth_blp)
    from admin.views import bp as admin_bp

    app.register_blueprint(admin_bp)
    from mall.api.codes.views import blp as codes_blp

    api.register_blueprint(codes_blp)
    from mall.api.points.views import blp as points_blp
    from mall.api.ratings.views import blp as ratings_blp
    from mall.api.upstream.views import blp as upstream_blp

    for rating_points_blp in (ratings_blp, points_blp, upstream_blp):
        api.register_blueprint(rating_points_blp)
    from pos_adapter.views import blp as pos_blp

    api.register_blueprint(pos_blp)
    from mall.api.catalog.views import blp as catalog_blp
    from mall.api.partners.views import blp as partners_blp

    api.register_blueprint(partners_blp)
    api.register_blueprint(catalog_blp)
    from mall.api.benefits.views import blp as benefits_blp

    api.register_blueprint(benefits_blp)
    from mall.farmer.api import blp as farmer_api_blp
    from mall.farmer.pages import bp as farmer_pages_bp

    api.register_blueprint(farmer_api_blp)
    app.register_blueprint(farmer_pages_bp)
    from pos_adapter.cashier.routes import bp as cashier_bp

    app.register_blueprint(cashier_bp)
    from mall.api.reports.views import blp as reports_blp
    from mall.api.settlement.views import blp as settlement_blp

    api.register_blueprint(settlement_blp)
    api.register_blueprint(reports_blp)
    from mall.api.villages.views import assessments_blp, entities_blp, villages_blp

    for villages_api_blp in (entities_blp, villages_blp, assessments_blp):
        api.register_blueprint(villages_api_blp)
    from mall.farmer.reservations.api import blp as reservations_api_blp
    from mall.farmer.reservations.pages import bp as reservation_pages_bp
    from pos_adapter.reservations import blp as pos_reservations_blp

    api.register_blueprint(reservations_api_blp)
    api.register_blueprint(pos_reservations_blp)
    app.register_blueprint(reservation_pages_bp)


def _register_cli(app: Flask) -> None:
    from mall.web.cli import register

    register(app)


def _request_context(app: Flask) -> None:
    @app.before_request
    def _bind_request_id() -> None:
        # A caller's id is kept only when it is a plain token: it goes into logs and headers.
        given = request.headers.get("X-Request-Id", "")
        g.request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=g.request_id)

    @app.after_request
    def _headers(resp: Response) -> Response:
        resp.headers.setdefault("X-Request-Id", g.get("request_id", ""))
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        # API answers are one caller's data (a revealed ID number, a balance, a terminal
        # secret): no browser or proxy keeps them unless a view says so (the public keys).
        if "Cache-Control" not in resp.headers and request.path.startswith(_API_PREFIXES):
            resp.headers["Cache-Control"] = "no-store"
        return resp
