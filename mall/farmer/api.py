"""Farmer API v1 (/api/v1/me, /api/v1/catalog, /api/v1/partners): the household's own data,
behind a farmer access token."""

from __future__ import annotations

from typing import Any

from flask import Response, g
from flask.views import MethodView
from sqlalchemy.orm import Session

from mall.auth.services import issue_farmer_tokens
from mall.codes import qr
from mall.extensions import db
from mall.farmer import services
from mall.farmer.schemas import (
    FarmerAppealIn,
    FarmerAppealOut,
    FarmerBenefitsOut,
    FarmerCardLostOut,
    FarmerCatalogArgs,
    FarmerCatalogOut,
    FarmerCodeArgs,
    FarmerCodeOut,
    FarmerMeOut,
    FarmerPartnerArgs,
    FarmerPartnerList,
    FarmerPinChange,
    FarmerPinChangedOut,
    FarmerRatingList,
    FarmerTransactionArgs,
    FarmerTransactionPage,
)
from mall.http.auth import BEARER_SECURITY, require_farmer
from mall.http.openapi import Blueprint

blp = Blueprint(
    "farmer", __name__, url_prefix="/api/v1", description="Farmer API v1 (农户): own data only"
)

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_IMAGE_DOC = {
    "responses": {
        "200": {
            "description": "the code as JSON, or its QR image with `?format=png|svg` "
            "(headers X-Code-Expires-At and X-Code-Refresh-After give its expiry)",
            "content": {
                "image/png": {"schema": {"type": "string", "format": "binary"}},
                "image/svg+xml": {"schema": {"type": "string"}},
            },
        }
    }
}


@blp.route("/me")
class Me(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, FarmerMeOut)
    @blp.alt_response(401, description="unauthorized, invalid_token")
    @require_farmer
    def get(self) -> tuple[dict[str, Any], int, dict[str, str]]:
        """The household: level, balances, members (masked)."""
        return services.me(db.session(), g.subject), 200, NO_STORE


@blp.route("/me/code")
class MyCode(MethodView):
    @require_farmer  # before the query string is parsed, as for /me/pin
    @blp.doc(security=BEARER_SECURITY, **_IMAGE_DOC)
    @blp.arguments(FarmerCodeArgs, location="query")
    @blp.response(200, FarmerCodeOut)
    @blp.alt_response(403, description="holder_suspended")
    def get(self, args: dict[str, str]) -> Any:
        """A fresh dynamic credit code (60 s, one payment); `?format=png|svg` for its QR."""
        session = db.session()
        issued = services.fresh_code(session, g.subject)
        session.commit()  # the first code ever creates the signing key
        body = {
            "code": issued.code,
            "expires_at": issued.expires_at,
            "refresh_after": issued.refresh_after,
        }
        if args["format"] == "json":
            return body, 200, NO_STORE
        if args["format"] == "png":
            resp = Response(qr.render_png(issued.code), mimetype="image/png")
        else:
            resp = Response(qr.render_svg(issued.code), mimetype="image/svg+xml")
        resp.headers.update(NO_STORE)
        resp.headers["X-Code-Expires-At"] = issued.expires_at.isoformat()
        resp.headers["X-Code-Refresh-After"] = issued.refresh_after.isoformat()
        return resp


@blp.route("/me/transactions")
class MyTransactions(MethodView):
    @require_farmer  # before the query string is parsed, as for /me/pin
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(FarmerTransactionArgs, location="query")
    @blp.response(200, FarmerTransactionPage)
    def get(self, args: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Ledger history of both wallets, newest first; `next_cursor` fetches older."""
        page = services.transactions(
            db.session(), g.subject, cursor=args["cursor"], limit=args["limit"]
        )
        return page, 200, NO_STORE


@blp.route("/me/benefits")
class MyBenefits(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, FarmerBenefitsOut)
    @require_farmer
    def get(self) -> tuple[dict[str, Any], int, dict[str, str]]:
        """The benefit list for the household's level, by partner category, with places."""
        return services.benefit_groups(db.session(), g.subject), 200, NO_STORE


@blp.route("/catalog")
class Catalog(MethodView):
    @require_farmer  # before the query string is parsed, as for /me/pin
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(FarmerCatalogArgs, location="query")
    @blp.response(200, FarmerCatalogOut)
    def get(self, args: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Goods redeemable for points in the household's county, and where."""
        items = services.catalog(db.session(), g.subject, partner_id=args["partner_id"])
        return {"items": items}, 200, NO_STORE


@blp.route("/partners")
class Partners(MethodView):
    @require_farmer  # before the query string is parsed, as for /me/pin
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(FarmerPartnerArgs, location="query")
    @blp.response(200, FarmerPartnerList)
    def get(self, args: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Partners of the household's township and county (own township first)."""
        items = services.partners(db.session(), g.subject, category=args["category"])
        return {"items": items}, 200, NO_STORE


@blp.route("/me/pin")
class MyPin(MethodView):
    # The token before the body: outside @blp.arguments, so a caller without a valid token
    # gets 401 whatever it sent (functools.wraps carries the OpenAPI notes through).
    @require_farmer
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(FarmerPinChange)
    @blp.response(200, FarmerPinChangedOut)
    @blp.alt_response(400, description="validation_error, pin_too_weak")
    @blp.alt_response(403, description="pin_invalid, pin_locked")
    def put(self, body: dict[str, str]) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Change the PIN: the old one is checked (5 wrong: locked 30 minutes). Every login of
        the household ends, on every device; this device's new login is in the answer."""
        session = db.session()
        services.change_pin(session, g.subject, body["old_pin"], body["new_pin"])
        login = _new_login(session)
        session.commit()
        return login, 200, NO_STORE


@blp.route("/me/card/report-lost")
class MyCardLost(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, FarmerCardLostOut)
    @blp.alt_response(404, description="not_found: no active card")
    @require_farmer
    def post(self) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Revoke the printed card at once (its code stops working at every till). Every login
        of the household ends, on every device; this device's new login is in the answer."""
        session = db.session()
        result = services.report_card_lost(session, g.subject)
        result |= _new_login(session)
        session.commit()
        return result, 200, NO_STORE


def _new_login(session: Session) -> dict[str, Any]:
    """A login for the caller's device after its household's logins were ended."""
    pair = issue_farmer_tokens(session, g.subject)
    return {
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "expires_in": pair.expires_in,
    }


@blp.route("/me/ratings")
class MyRatings(MethodView):
    @blp.doc(security=BEARER_SECURITY)
    @blp.response(200, FarmerRatingList)
    @require_farmer
    def get(self) -> tuple[dict[str, Any], int, dict[str, str]]:
        """The household's last ratings from their notice on, with the notice and appeal
        dates, its appeals (复议) and the answers, and whether it may appeal today."""
        return {"items": services.my_ratings(db.session(), g.subject)}, 200, NO_STORE


@blp.route("/me/ratings/<int:rating_id>/appeals")
class MyRatingAppeals(MethodView):
    @require_farmer  # before the body is parsed, as for /me/pin
    @blp.doc(security=BEARER_SECURITY)
    @blp.arguments(FarmerAppealIn)
    @blp.response(201, FarmerAppealOut)
    @blp.alt_response(400, description="validation_error: grounds empty or over 1000 characters")
    @blp.alt_response(404, description="not_found: no such rating of this household")
    @blp.alt_response(
        409, description="invalid_state: the appeal window is closed, or an appeal is already open"
    )
    def post(
        self, body: dict[str, str], rating_id: int
    ) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Appeal (复议) one of the household's ratings: while it is under notice, or within
        the days after the notice ended; the village answers by `answer_due`."""
        session = db.session()
        appeal = services.file_my_appeal(session, g.subject, rating_id, body["grounds"])
        session.commit()
        return appeal, 201, NO_STORE
