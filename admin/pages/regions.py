"""Regions and schemes: each county's and township's own settings beside the effective ones
(inherited from above), edited through mall.regions.services.change_settings (which checks
the policy and writes the audit entry, for the staff API too)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from admin import queries
from admin.blueprint import bp, staff_page
from admin.common import ADMINS, READERS, apply_service_errors, in_scope
from admin.forms import SettingsForm
from admin.nav import NAV_ITEMS, NavItem
from mall.errors import ValidationFailed
from mall.extensions import db
from mall.ratings.schemes import list_schemes
from mall.regions.services import (
    DEFAULT_SETTINGS,
    change_settings,
    effective_settings,
    get_region,
)
from mall.users import policy

NAV_ITEMS.append(NavItem("admin.regions", _l("区域设置"), READERS, order=70))

SETTING_LABELS = {
    "rating_scheme": _l("评级方案"),
    "point_value_fen": _l("每积分价值(分)"),
    "integrity_money_carry_over": _l("诚信金结转下期"),
    "rating_period": _l("评级周期"),
    "notice_days": _l("公示天数"),
    "appeal_days": _l("复议期限(天)"),
    "appeal_answer_days": _l("答复期限(天)"),
    "points_expiry": _l("积分有效期"),
    "offline_floor_limit_fen": _l("离线交易限额(分)"),
    "reservation_days": _l("预约保留天数"),
    "rating_score_weights": _l("评分权重(%)"),
}


def _show(key: str, value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return gettext("是") if value else gettext("否")
    if key == "rating_score_weights" and isinstance(value, dict):
        names = {"civility": gettext("评议"), "visit": gettext("走访"), "points": gettext("积分")}
        return " / ".join(f"{names.get(k, k)} {v}" for k, v in value.items())
    if key == "rating_period":
        return {"year": gettext("年"), "quarter": gettext("季度")}.get(str(value), str(value))
    return str(value)


@bp.get("/regions")
@staff_page(*READERS)
def regions() -> str:
    session = db.session()
    rows = []
    for region in queries.regions_for_settings(session, g.user):
        own = region.settings or {}
        effective = effective_settings(session, region)
        rows.append(
            {
                "region": region,
                "can_edit": policy.may_edit_region_settings(g.user, region),
                "settings": [
                    (
                        key,
                        SETTING_LABELS.get(key, key),
                        _show(key, own.get(key)) if key in own else None,
                        _show(key, effective.get(key)),
                    )
                    for key in DEFAULT_SETTINGS
                ],
            }
        )
    schemes = list_schemes(session, g.user.county_id)
    return render_template("admin/regions.html", rows=rows, schemes=schemes)


@bp.route("/regions/<int:region_id>/settings", methods=["GET", "POST"])
@staff_page(*ADMINS)
def region_settings(region_id: int) -> Any:
    session = db.session()
    region = in_scope(g.user, get_region(session, region_id))
    policy.ensure(policy.may_edit_region_settings(g.user, region))
    form = SettingsForm()
    form.rating_scheme.choices = [("", gettext("继承上级"))] + [
        (s.code, s.name_zh) for s in list_schemes(session, g.user.county_id)
    ]
    own = region.settings or {}
    if request.method == "GET":
        form.rating_scheme.data = own.get("rating_scheme", "")
        form.point_value_fen.data = own.get("point_value_fen")
        form.rating_period.data = own.get("rating_period", "")
        form.notice_days.data = own.get("notice_days")
        form.appeal_days.data = own.get("appeal_days")
        form.appeal_answer_days.data = own.get("appeal_answer_days")
        carry = own.get("integrity_money_carry_over")
        form.integrity_money_carry_over.data = "" if carry is None else ("yes" if carry else "no")
        floor = own.get("offline_floor_limit_fen")
        form.offline_floor_limit_yuan.data = Decimal(floor) / 100 if floor is not None else None
        form.reservation_days.data = own.get("reservation_days")
        weights = own.get("rating_score_weights") or {}
        form.weight_civility.data = weights.get("civility")
        form.weight_visit.data = weights.get("visit")
        form.weight_points.data = weights.get("points")
    if form.validate_on_submit():
        changes = _changes(form)
        if not changes:
            form.form_errors.append(gettext("没有填写要修改的设置"))
        else:
            try:
                change_settings(session, g.user, region, changes)
            except ValidationFailed as exc:
                session.rollback()
                apply_service_errors(form, exc)
            else:
                session.commit()
                flash(gettext("%(r)s的设置已保存", r=region.name), "success")
                return redirect(url_for("admin.regions"))
    effective = effective_settings(session, region)
    return render_template(
        "admin/region_settings.html",
        form=form,
        region=region,
        effective=[(SETTING_LABELS.get(k, k), _show(k, v)) for k, v in effective.items()],
    ), (400 if form.errors or form.form_errors else 200)


def _changes(form: SettingsForm) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if form.rating_scheme.data:
        out["rating_scheme"] = form.rating_scheme.data
    for key in (
        "point_value_fen",
        "notice_days",
        "appeal_days",
        "appeal_answer_days",
        "reservation_days",
    ):
        value = getattr(form, key).data
        if value is not None:
            out[key] = value
    if form.rating_period.data:
        out["rating_period"] = form.rating_period.data
    if form.integrity_money_carry_over.data:
        out["integrity_money_carry_over"] = form.integrity_money_carry_over.data == "yes"
    if form.offline_floor_limit_yuan.data is not None:
        out["offline_floor_limit_fen"] = int(form.offline_floor_limit_yuan.data * 100)
    if form.weight_civility.data is not None:
        out["rating_score_weights"] = {
            "civility": form.weight_civility.data,
            "visit": form.weight_visit.data,
            "points": form.weight_points.data,
        }
    return out
