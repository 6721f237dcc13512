"""The audit log viewer (filters, keyset pages, CSV export) and staff accounts (list, create,
deactivate; every change audited)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from admin import queries
from admin.blueprint import ROLE_LABELS, bp, staff_page
from admin.common import (
    ADMINS,
    READERS,
    apply_service_errors,
    arg_date,
    arg_str,
    export_response,
    form_page,
    in_scope,
    keyset_page,
    walk,
)
from admin.forms import CheckboxConfirmForm, UserForm
from admin.nav import NAV_ITEMS, NavItem
from mall.audit import services as audit
from mall.audit.models import AuditEntry
from mall.clock import local_zone
from mall.errors import Conflict, NotFound, ValidationFailed
from mall.extensions import db
from mall.partners.models import Partner
from mall.regions.services import get_region
from mall.staff.services import (
    ROLE_REGION_KIND,
    create_user,
    deactivate_user,
    ensure_may_deactivate,
)
from mall.users import policy
from mall.users.models import ROLES, User
from mall.users.scope import restrict

NAV_ITEMS.append(NavItem("admin.audit_log", _l("审计日志"), READERS, order=90))
NAV_ITEMS.append(NavItem("admin.users", _l("用户"), READERS, order=80))


def _day_start(d: Any) -> datetime:
    return datetime.combine(d, time.min, tzinfo=local_zone())


@bp.get("/audit")
@staff_page(*READERS)
def audit_log() -> Any:
    since, until = arg_date("since"), arg_date("until")
    actor_name = arg_str("actor", 64)
    actor_id: int | None = None
    if actor_name:
        actor_id = (
            db.session.scalar(
                restrict(
                    select(User.id),
                    g.user,
                    county_col=User.county_id,
                    township_col=User.township_id,
                ).where(User.username == actor_name)
            )
            or -1
        )  # an unknown name matches nothing

    def fetch(after: int | None, limit: int) -> list[AuditEntry]:
        return audit.list_entries(
            db.session(),
            g.user,
            before_id=after,
            limit=limit,
            action=arg_str("action", 64),
            object_type=arg_str("object_type", 40),
            object_id=arg_str("object_id", 64),
            actor_user_id=actor_id,
            since=_day_start(since) if since else None,
            until=_day_start(until + timedelta(days=1)) if until else None,
        )

    if request.args.get("format") in ("csv", "xlsx"):
        headers = [
            gettext("编号"),
            gettext("时间"),
            gettext("操作人"),
            gettext("操作"),
            gettext("对象类型"),
            gettext("对象"),
            gettext("备注"),
            gettext("变更前"),
            gettext("变更后"),
            gettext("IP"),
            gettext("请求编号"),
        ]
        rows = (
            [
                e.id,
                e.at,
                e.actor_label,
                e.action,
                e.object_type,
                e.object_id,
                e.note,
                e.before,
                e.after,
                e.ip,
                e.request_id,
            ]
            for e in walk(fetch, lambda e: e.id)
        )
        return export_response(gettext("审计日志"), headers, rows, request.args["format"])
    return render_template("admin/audit.html", page=keyset_page(fetch, lambda e: e.id))


# ---------------------------------------------------------------- users


@bp.get("/users")
@staff_page(*READERS)
def users() -> Any:
    role = arg_str("role")
    if role not in ROLES:
        role = None
    active = {"1": True, "0": False}.get(request.args.get("active", ""))
    q = arg_str("q", 64)

    def fetch(after: int | None, limit: int) -> list[User]:
        return queries.list_users(
            db.session(), g.user, role=role, q=q, active=active, after_id=after, limit=limit
        )

    if request.args.get("format") in ("csv", "xlsx"):
        rows_all = list(walk(fetch, lambda u: u.id))
        names = queries.region_names(db.session(), {u.region_id for u in rows_all})
        return export_response(
            gettext("用户"),
            [
                gettext("编号"),
                gettext("用户名"),
                gettext("姓名"),
                gettext("角色"),
                gettext("区域"),
                gettext("状态"),
                gettext("创建时间"),
            ],
            (
                [
                    u.id,
                    u.username,
                    u.display_name,
                    str(ROLE_LABELS.get(u.role, u.role)),
                    names.get(u.region_id, ""),
                    gettext("启用") if u.active else gettext("停用"),
                    u.created_at,
                ]
                for u in rows_all
            ),
            request.args["format"],
        )
    page = keyset_page(fetch, lambda u: u.id)
    return render_template(
        "admin/users.html",
        page=page,
        region_names=queries.region_names(db.session(), {u.region_id for u in page.items}),
        roles=[(r, ROLE_LABELS[r]) for r in ROLES],
        creatable=policy.may_manage_users(g.user),
        can_deactivate=lambda u: policy.may_deactivate_user(g.user, u),
    )


def _user_form_choices(form: UserForm) -> None:
    session = db.session()
    allowed = policy.manageable_roles(g.user)
    form.role.choices = [(r, ROLE_LABELS[r]) for r in ROLES if r in allowed]
    regions = []
    if any(ROLE_REGION_KIND[r] == "county" for r in allowed):
        regions.append(get_region(session, g.user.county_id))
    towns = queries.townships(session, g.user)
    villages = queries.villages(session, g.user)
    for town in towns:
        regions.append(town)
        regions.extend(v for v in villages if v.township_id == town.id)
    kind_label = {"county": gettext("县"), "township": gettext("乡镇"), "village": gettext("村")}
    form.region_id.choices = [(r.id, f"{r.name}({kind_label[r.kind]})") for r in regions]
    partners = queries.list_partners(session, g.user, active=True, limit=500)
    form.partner_id.choices = [(0, gettext("(不适用)"))] + [(p.id, p.name) for p in partners]


@bp.route("/users/new", methods=["GET", "POST"])
@staff_page(*ADMINS)
def user_new() -> Any:
    form = UserForm()
    _user_form_choices(form)
    if form.validate_on_submit():
        role = form.role.data or ""
        policy.ensure(policy.may_manage_role(g.user, role))
        region = in_scope(g.user, get_region(db.session(), form.region_id.data))
        partner = None
        if form.partner_id.data:
            partner = in_scope(g.user, db.session.get(Partner, form.partner_id.data))
        if role == "cashier" and partner is None:
            form.partner_id.errors = [gettext("收银员必须选择商户")]
        elif region.kind != ROLE_REGION_KIND[role]:
            need = {"county": gettext("县"), "township": gettext("乡镇"), "village": gettext("村")}[
                ROLE_REGION_KIND[role]
            ]
            form.region_id.errors = [gettext("该角色须属于一个%(k)s", k=need)]
        else:
            try:
                user = create_user(
                    db.session(),
                    username=form.username.data or "",
                    password=form.password.data or "",
                    role=role,
                    region=region,
                    display_name=(form.display_name.data or "").strip(),
                    partner=partner if role == "cashier" else None,
                )
            except (ValidationFailed, Conflict) as exc:
                db.session.rollback()
                apply_service_errors(form, exc, {"partner_id": "partner_id"})
            else:
                audit.record(
                    db.session(),
                    actor=g.user,
                    action="user.create",
                    object_type="user",
                    object_id=user.id,
                    county_id=user.county_id,
                    township_id=user.township_id,
                    after={
                        "username": user.username,
                        "role": user.role,
                        "region_id": user.region_id,
                    },
                )
                db.session.commit()
                flash(gettext("用户“%(u)s”已创建", u=user.username), "success")
                return redirect(url_for("admin.users"))
    return form_page(
        form=form,
        title=gettext("新增用户"),
        submit=gettext("创建用户"),
        back_url=url_for("admin.users"),
        intro=gettext("县级管理员和审计员属于县;乡镇管理员和收银员属于乡镇;村文书属于村。"),
    )


@bp.route("/users/<int:user_id>/deactivate", methods=["GET", "POST"])
@staff_page(*ADMINS)
def user_deactivate(user_id: int) -> Any:
    target = db.session.get(User, user_id)
    if target is None:
        raise NotFound()
    ensure_may_deactivate(g.user, target)
    form = CheckboxConfirmForm()
    if form.validate_on_submit():
        deactivate_user(db.session(), g.user, target)
        db.session.commit()
        flash(gettext("用户“%(u)s”已停用", u=target.username), "success")
        return redirect(url_for("admin.users"))
    return render_template(
        "admin/confirm.html",
        form=form,
        title=gettext("停用用户"),
        warning=gettext("停用后该用户立即无法登录,已登录的会话也会失效。"),
        submit=gettext("确认停用"),
        facts=[
            (gettext("用户名"), target.username),
            (gettext("角色"), ROLE_LABELS.get(target.role, target.role)),
        ],
        back_url=url_for("admin.users"),
    ), (400 if form.errors else 200)
