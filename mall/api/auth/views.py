"""`/api/v1/auth/...`: farmer and staff login, refresh rotation, logout, staff whoami."""

from __future__ import annotations

from typing import Any

from flask import g
from flask.views import MethodView
from flask_babel import gettext

from mall.api.auth.schemas import (
    FarmerLoginSchema,
    RefreshRequestSchema,
    StaffLoginSchema,
    StaffMeSchema,
    StaffTokenSchema,
    TokenPairSchema,
)
from mall.auth import services
from mall.errors import Unauthorized
from mall.extensions import db
from mall.http.auth import BEARER_SECURITY, require_staff
from mall.http.extensions import api
from mall.http.openapi import Blueprint
from mall.users.models import User

blp = Blueprint(
    "auth", __name__, url_prefix="/api/v1/auth", description="Logins and tokens (登录与令牌)"
)


@blp.record_once
def _declare_bearer_scheme(_state: Any) -> None:
    schemes = api.spec.components.security_schemes
    if "bearerAuth" not in schemes:
        api.spec.components.security_scheme(
            "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        )


@blp.route("/farmer/login")
class FarmerLogin(MethodView):
    @blp.arguments(FarmerLoginSchema)
    @blp.response(200, TokenPairSchema)
    @blp.alt_response(401, description="invalid_credentials")
    @blp.alt_response(429, description="login_locked")
    def post(self, body: dict[str, str]) -> services.TokenPair:
        """Farmer login with phone and PIN (农户登录)."""
        # A refusal that counted a failure keeps it (DomainError.keeps_changes).
        pair = services.login_farmer(db.session(), body["phone"], body["pin"])
        db.session.commit()
        return pair


@blp.route("/refresh")
class Refresh(MethodView):
    @blp.arguments(RefreshRequestSchema)
    @blp.response(200, TokenPairSchema)
    @blp.alt_response(401, description="invalid_token")
    def post(self, body: dict[str, str]) -> services.TokenPair:
        """Exchange a refresh token for a new pair; the old one is retired."""
        pair = services.refresh(db.session(), body["refresh_token"])
        db.session.commit()
        return pair


@blp.route("/logout")
class Logout(MethodView):
    @blp.arguments(RefreshRequestSchema)
    @blp.response(204)
    @blp.alt_response(401, description="invalid_token")
    def post(self, body: dict[str, str]) -> None:
        """Log the household out everywhere: every refresh token and access token it holds
        on any device, and its /m/ page sessions, end at once. A token of a login that has
        ended already ends nothing more."""
        services.logout(db.session(), body["refresh_token"])
        db.session.commit()


@blp.route("/admin/login")
class StaffLogin(MethodView):
    @blp.arguments(StaffLoginSchema)
    @blp.response(200, StaffTokenSchema)
    @blp.alt_response(401, description="invalid_credentials")
    @blp.alt_response(429, description="login_locked")
    def post(self, body: dict[str, str]) -> dict[str, Any]:
        """Staff login with username and password; answers an admin access token."""
        try:
            user = services.login_staff(db.session(), body["username"], body["password"])
        except Unauthorized as exc:
            # Same code; the default message speaks of phones, staff log in by username.
            raise Unauthorized(
                exc.code, exc.details, gettext("用户名或密码错误"), keeps_changes=exc.keeps_changes
            ) from exc
        db.session.commit()
        token, lifetime = services.issue_staff_token(user)
        return {"access_token": token, "expires_in": lifetime}


@blp.route("/admin/me")
class StaffMe(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, StaffMeSchema)
    @blp.alt_response(401, description="unauthorized, invalid_token")
    @require_staff()
    def get(self) -> User:
        """The staff account of the token or admin session."""
        user: User = g.user
        return user
