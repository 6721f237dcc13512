"""Partners (商户), their terminals (secret shown once), cashier accounts, catalogue goods and
the benefit list. Each page: parse the form, call the service, audit where the service does
not, commit once, flash, redirect."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from admin import queries
from admin.blueprint import bp, staff_page
from admin.common import (
    ADMINS,
    READERS,
    apply_service_errors,
    arg_int,
    arg_str,
    export_response,
    fen,
    form_page,
    in_scope,
    keyset_page,
    walk,
)
from admin.forms import (
    BENEFIT_KIND_LABELS,
    CATEGORY_LABELS,
    FUNDER_LABELS,
    BenefitForm,
    CashierForm,
    CheckboxConfirmForm,
    GoodsForm,
    PartnerEditForm,
    PartnerForm,
    TerminalForm,
)
from admin.nav import NAV_ITEMS, NavItem
from mall.audit import services as audit
from mall.benefits import services as benefits
from mall.benefits.models import Benefit
from mall.catalog import services as catalog
from mall.catalog.models import Goods
from mall.errors import Conflict, DomainError, NotFound, ValidationFailed
from mall.extensions import db
from mall.partners.models import PARTNER_CATEGORIES, Partner, Terminal
from mall.partners.services import (
    create_partner,
    create_terminal,
    partner_snapshot,
    rotate_terminal_secret,
    set_terminal_active,
    update_partner,
    visible_partner,
    visible_terminal,
)
from mall.regions.services import get_region
from mall.reservations.services import reserved_qty
from mall.security.masking import mask_id_number
from mall.staff.services import create_user
from mall.users import policy

NAV_ITEMS.append(NavItem("admin.partners", _l("商户"), READERS, order=40))
NAV_ITEMS.append(NavItem("admin.benefit_list", _l("惠民权益"), READERS, order=50))


def _partner(partner_id: int) -> Partner:
    return visible_partner(db.session(), g.user, partner_id)


def _terminal(terminal_pk: int) -> tuple[Terminal, Partner]:
    return visible_terminal(db.session(), g.user, terminal_pk)


def _settlement(form: PartnerForm) -> dict[str, str]:
    account = (form.settlement_account.data or "").strip()
    out = {
        "payee": (form.settlement_payee.data or "").strip(),
        "bank": (form.settlement_bank.data or "").strip(),
    }
    # Only the masked account number is kept: payouts happen in the bank's own system.
    if account:
        out["account_masked"] = mask_id_number(account)
    return {k: v for k, v in out.items() if v}


def _township_choices(form: PartnerForm) -> None:
    form.township_id.choices = [(t.id, t.name) for t in queries.townships(db.session(), g.user)]


# ---------------------------------------------------------------- partners


@bp.get("/partners")
@staff_page(*READERS)
def partners() -> Any:
    category = arg_str("category")
    q = arg_str("q")
    township_id = arg_int("township")
    active = {"1": True, "0": False}.get(request.args.get("active", ""))

    def fetch(after: int | None, limit: int) -> list[Partner]:
        return queries.list_partners(
            db.session(),
            g.user,
            category=category,
            q=q,
            township_id=township_id,
            active=active,
            after_id=after,
            limit=limit,
        )

    towns = queries.townships(db.session(), g.user)
    names = {t.id: t.name for t in towns}
    fmt = request.args.get("format")
    if fmt in ("csv", "xlsx"):
        rows = (
            [
                p.id,
                p.name,
                str(CATEGORY_LABELS.get(p.category, p.category)),
                names.get(p.township_id, ""),
                p.address,
                p.contact_name,
                p.contact_phone_masked,
                gettext("是") if p.accepts_integrity else gettext("否"),
                gettext("是") if p.accepts_points else gettext("否"),
                gettext("启用") if p.active else gettext("停用"),
            ]
            for p in walk(fetch, lambda p: p.id)
        )
        headers = [
            gettext("编号"),
            gettext("商户名称"),
            gettext("类别"),
            gettext("乡镇"),
            gettext("地址"),
            gettext("联系人"),
            gettext("联系电话"),
            gettext("诚信金"),
            gettext("积分兑换"),
            gettext("状态"),
        ]
        return export_response(gettext("商户"), headers, rows, fmt)
    page = keyset_page(fetch, lambda p: p.id)
    return render_template(
        "admin/partners.html",
        page=page,
        can_manage=policy.may_manage_partners(g.user),
        townships=towns,
        township_names=names,
        categories=[(c, CATEGORY_LABELS[c]) for c in PARTNER_CATEGORIES],
    )


def _show_refusal(form: PartnerForm, exc: Conflict | ValidationFailed) -> None:
    """Put a refused create or edit beside the form's fields; nothing of it is kept. The one
    conflict a partner's form can meet is a name taken in the township."""
    db.session.rollback()
    if isinstance(exc, Conflict):
        form.name.errors = [*form.name.errors, gettext("本乡镇已有同名商户,请换一个名称")]
    else:
        apply_service_errors(form, exc)


@bp.route("/partners/new", methods=["GET", "POST"])
@staff_page(*ADMINS)
def partner_new() -> Any:
    form = PartnerForm()
    _township_choices(form)
    if form.validate_on_submit():
        township = in_scope(g.user, get_region(db.session(), form.township_id.data))
        try:
            partner = create_partner(
                db.session(),
                township=township,
                name=form.name.data or "",
                category=form.category.data or "",
                address=(form.address.data or "").strip(),
                contact_name=(form.contact_name.data or "").strip(),
                contact_phone=(form.contact_phone.data or "").strip(),
                accepts_integrity=bool(form.accepts_integrity.data),
                accepts_points=bool(form.accepts_points.data),
            )
        except (Conflict, ValidationFailed) as exc:
            _show_refusal(form, exc)
        else:
            partner.settlement = _settlement(form)
            db.session.flush()
            audit.record(
                db.session(),
                actor=g.user,
                action="partner.create",
                object_type="partner",
                object_id=partner.id,
                county_id=partner.county_id,
                township_id=partner.township_id,
                after=partner_snapshot(partner),
            )
            db.session.commit()
            flash(gettext("商户“%(name)s”已创建", name=partner.name), "success")
            return redirect(url_for("admin.partner_detail", partner_id=partner.id))
    return form_page(
        form=form,
        title=gettext("新增商户"),
        submit=gettext("创建商户"),
        back_url=url_for("admin.partners"),
    )


@bp.get("/partners/<int:partner_id>")
@staff_page(*READERS)
def partner_detail(partner_id: int) -> str:
    partner = _partner(partner_id)
    session = db.session()
    goods = catalog.list_goods(session, partner.id)
    return render_template(
        "admin/partner_detail.html",
        partner=partner,
        can_manage=policy.may_manage_partners(g.user),
        can_add_benefit=policy.may_create_benefits(g.user),
        terminals=queries.partner_terminals(session, partner),
        cashiers=queries.partner_cashiers(session, partner),
        goods=goods,
        # Held for pickups booked online: already out of `stock` (what is on sale).
        reserved=reserved_qty(session, [item.id for item in goods]),
        benefit_rows=benefits.list_benefits(session, g.user, partner_id=partner.id, limit=100),
        township=get_region(session, partner.township_id).name,
        terminal_form=TerminalForm(),
    )


@bp.route("/partners/<int:partner_id>/edit", methods=["GET", "POST"])
@staff_page(*ADMINS)
def partner_edit(partner_id: int) -> Any:
    partner = _partner(partner_id)
    form = PartnerEditForm(obj=partner)
    _township_choices(form)
    form.township_id.choices = [
        (partner.township_id, get_region(db.session(), partner.township_id).name)
    ]
    if request.method == "GET":
        form.township_id.data = partner.township_id
        form.contact_phone.data = ""
        s = partner.settlement or {}
        form.settlement_payee.data = s.get("payee", "")
        form.settlement_bank.data = s.get("bank", "")
    if form.validate_on_submit():
        settlement = _settlement(form)
        if "account_masked" not in settlement and (partner.settlement or {}).get("account_masked"):
            settlement["account_masked"] = partner.settlement["account_masked"]
        changes = {
            "name": form.name.data or "",
            "category": form.category.data or partner.category,
            "address": (form.address.data or "").strip(),
            "contact_name": (form.contact_name.data or "").strip(),
            "contact_phone": form.contact_phone.data or "",  # empty: unchanged
            "accepts_integrity": bool(form.accepts_integrity.data),
            "accepts_points": bool(form.accepts_points.data),
            "active": bool(form.active.data),
            "settlement": settlement,
        }
        try:
            update_partner(db.session(), g.user, partner, changes)
        except (Conflict, ValidationFailed) as exc:
            _show_refusal(form, exc)
        else:
            db.session.commit()
            flash(gettext("商户信息已保存"), "success")
            return redirect(url_for("admin.partner_detail", partner_id=partner.id))
    return form_page(
        form=form,
        title=gettext("编辑商户:%(name)s", name=partner.name),
        submit=gettext("保存"),
        back_url=url_for("admin.partner_detail", partner_id=partner.id),
        intro=gettext("联系电话留空表示不修改;银行账号只保存脱敏后的号码。"),
    )


# ---------------------------------------------------------------- terminals


def _secret_page(terminal: Terminal, partner: Partner, secret: str, rotated: bool) -> str:
    return render_template(
        "admin/terminal_secret.html",
        terminal=terminal,
        partner=partner,
        secret=secret,
        rotated=rotated,
    )


@bp.post("/partners/<int:partner_id>/terminals")
@staff_page(*ADMINS)
def terminal_create(partner_id: int) -> Any:
    partner = _partner(partner_id)
    form = TerminalForm()
    if not form.validate():
        flash(gettext("收银台名称最多100字"), "error")
        return redirect(url_for("admin.partner_detail", partner_id=partner.id))
    terminal, secret = create_terminal(db.session(), partner, (form.name.data or "").strip())
    _audit_terminal("terminal.create", terminal, partner)
    db.session.commit()
    return _secret_page(terminal, partner, secret, rotated=False)


def _audit_terminal(action: str, terminal: Terminal, partner: Partner) -> None:
    audit.record(
        db.session(),
        actor=g.user,
        action=action,
        object_type="terminal",
        object_id=terminal.terminal_id,
        county_id=partner.county_id,
        township_id=partner.township_id,
        after={"active": terminal.active, "partner_id": partner.id},
    )


_TERMINAL_ACTIONS = {
    "rotate": (
        _l("更换终端密钥"),
        _l("旧密钥将立即失效,收银台须填入新密钥后才能继续使用。"),
        _l("更换密钥"),
    ),
    "disable": (_l("停用终端"), _l("停用后该收银台的所有请求都会被拒绝。"), _l("停用终端")),
    "enable": (_l("启用终端"), _l("启用后该收银台可以继续使用原密钥。"), _l("启用终端")),
}


@bp.route(
    "/terminals/<int:terminal_pk>/<any(rotate, disable, enable):action>", methods=["GET", "POST"]
)
@staff_page(*ADMINS)
def terminal_action(terminal_pk: int, action: str) -> Any:
    terminal, partner = _terminal(terminal_pk)
    form = CheckboxConfirmForm()
    title, warning, submit = _TERMINAL_ACTIONS[action]
    if form.validate_on_submit():
        if action == "rotate":
            secret = rotate_terminal_secret(db.session(), terminal)
            _audit_terminal("terminal.rotate_secret", terminal, partner)
            db.session.commit()
            return _secret_page(terminal, partner, secret, rotated=True)
        set_terminal_active(db.session(), terminal, action == "enable")
        _audit_terminal(f"terminal.{action}", terminal, partner)
        db.session.commit()
        flash(
            gettext(
                "终端 %(tid)s 已%(what)s",
                tid=terminal.terminal_id,
                what=gettext("启用") if action == "enable" else gettext("停用"),
            ),
            "success",
        )
        return redirect(url_for("admin.partner_detail", partner_id=partner.id))
    return render_template(
        "admin/confirm.html",
        form=form,
        title=str(title),
        warning=str(warning),
        submit=str(submit),
        facts=[
            (gettext("商户"), partner.name),
            (gettext("终端编号"), terminal.terminal_id),
            (gettext("名称"), terminal.name),
        ],
        back_url=url_for("admin.partner_detail", partner_id=partner.id),
    ), (400 if form.errors else 200)


# ---------------------------------------------------------------- cashiers


@bp.route("/partners/<int:partner_id>/cashiers/new", methods=["GET", "POST"])
@staff_page(*ADMINS)
def cashier_new(partner_id: int) -> Any:
    partner = _partner(partner_id)
    form = CashierForm()
    if form.validate_on_submit():
        township = get_region(db.session(), partner.township_id)
        try:
            user = create_user(
                db.session(),
                username=form.username.data or "",
                password=form.password.data or "",
                role="cashier",
                region=township,
                display_name=(form.display_name.data or "").strip(),
                partner=partner,
            )
        except (ValidationFailed, Conflict) as exc:
            apply_service_errors(form, exc)
        else:
            audit.record(
                db.session(),
                actor=g.user,
                action="user.create",
                object_type="user",
                object_id=user.id,
                county_id=user.county_id,
                township_id=user.township_id,
                after={"username": user.username, "role": user.role, "region_id": user.region_id},
            )
            db.session.commit()
            flash(gettext("收银员账号“%(u)s”已创建", u=user.username), "success")
            return redirect(url_for("admin.partner_detail", partner_id=partner.id))
    return form_page(
        form=form,
        title=gettext("为“%(name)s”新增收银员", name=partner.name),
        submit=gettext("创建账号"),
        back_url=url_for("admin.partner_detail", partner_id=partner.id),
        intro=gettext("收银员只能登录收银终端,不能打开管理后台。"),
    )


# ---------------------------------------------------------------- catalogue goods


def _goods_values(form: GoodsForm) -> dict[str, Any]:
    return {
        "name": (form.name.data or "").strip(),
        "points_price": form.points_price.data,
        "settlement_price_fen": int((form.settlement_yuan.data or Decimal(0)) * 100),
        "stock": form.stock.data,
        "min_level_rank": form.min_level_rank.data,
        "active": bool(form.active.data),
    }


def _goods_audit(action: str, goods: Goods, before: dict[str, Any] | None = None) -> None:
    audit.record(
        db.session(),
        actor=g.user,
        action=action,
        object_type="goods",
        object_id=goods.id,
        county_id=goods.county_id,
        township_id=goods.township_id,
        before=before,
        after={k: getattr(goods, k) for k in ("sku", *catalog.EDITABLE)},
    )


@bp.route("/partners/<int:partner_id>/goods/new", methods=["GET", "POST"])
@staff_page(*ADMINS)
def goods_new(partner_id: int) -> Any:
    partner = _partner(partner_id)
    form = GoodsForm()
    if form.validate_on_submit():
        try:
            goods = catalog.create_goods(
                db.session(), partner, sku=(form.sku.data or "").strip(), **_goods_values(form)
            )
        except Conflict as exc:
            form.sku.errors = [*form.sku.errors, gettext("该商户已有此商品编码")]
            del exc
        else:
            _goods_audit("goods.create", goods)
            db.session.commit()
            flash(gettext("商品“%(name)s”已添加", name=goods.name), "success")
            return redirect(url_for("admin.partner_detail", partner_id=partner.id) + "#goods")
    return form_page(
        form=form,
        title=gettext("为“%(name)s”添加兑换商品", name=partner.name),
        submit=gettext("添加商品"),
        back_url=url_for("admin.partner_detail", partner_id=partner.id),
    )


@bp.route("/goods/<int:goods_id>/edit", methods=["GET", "POST"])
@staff_page(*ADMINS)
def goods_edit(goods_id: int) -> Any:
    goods = db.session.get(Goods, goods_id)
    if goods is None:
        raise NotFound()
    partner = _partner(goods.partner_id)
    form = GoodsForm(obj=goods)
    if request.method == "GET":
        form.settlement_yuan.data = Decimal(goods.settlement_price_fen) / 100
    form.sku.render_kw = {"readonly": True}
    if form.validate_on_submit():
        form.sku.data = goods.sku
        before = catalog.update_goods(db.session(), goods, _goods_values(form))
        _goods_audit("goods.update", goods, before)
        db.session.commit()
        flash(gettext("商品已保存"), "success")
        return redirect(url_for("admin.partner_detail", partner_id=partner.id) + "#goods")
    return form_page(
        form=form,
        title=gettext("编辑商品:%(name)s", name=goods.name),
        submit=gettext("保存"),
        back_url=url_for("admin.partner_detail", partner_id=partner.id),
    )


# ---------------------------------------------------------------- benefit list


def _benefit_terms(b: Benefit) -> str:
    if b.kind == "percent_discount" and b.percent_bp:
        text = gettext("优惠%(p)s%%", p=f"{b.percent_bp / 100:g}")
        if b.cap_fen:
            text += gettext(",最多%(y)s元", y=fen(b.cap_fen))
        return text
    if b.kind == "fixed_discount" and b.fixed_fen:
        return gettext("立减%(y)s元", y=fen(b.fixed_fen))
    label = str(BENEFIT_KIND_LABELS.get(b.kind, b.kind))
    if b.kind == "free_item" and b.cap_fen:
        label += gettext(",最多%(y)s元", y=fen(b.cap_fen))
    return label


@bp.get("/benefits")
@staff_page(*READERS)
def benefit_list() -> Any:
    category = arg_str("category")
    partner_id = arg_int("partner")
    active = {"1": True, "0": False}.get(request.args.get("active", ""))
    if category is not None and category not in PARTNER_CATEGORIES:
        category = None

    def fetch(after: int | None, limit: int) -> list[Benefit]:
        return benefits.list_benefits(
            db.session(),
            g.user,
            active=active,
            partner_id=partner_id,
            category=category,
            after_id=after,
            limit=limit,
        )

    fmt = request.args.get("format")
    if fmt in ("csv", "xlsx"):
        rows_all = list(walk(fetch, lambda b: b.id))
        names = queries.benefit_partner_labels(db.session(), rows_all)
        headers = [
            gettext("编号"),
            gettext("权益名称"),
            gettext("适用商户"),
            gettext("最低等级"),
            gettext("内容"),
            gettext("资金来源"),
            gettext("生效日期"),
            gettext("截止日期"),
            gettext("状态"),
        ]
        return export_response(
            gettext("惠民权益清单"),
            headers,
            (
                [
                    b.id,
                    b.title_zh,
                    names.get(b.partner_id, "")
                    if b.partner_id
                    else str(CATEGORY_LABELS.get(b.partner_category or "", "")),
                    b.min_level_rank,
                    _benefit_terms(b),
                    str(FUNDER_LABELS.get(b.funded_by, b.funded_by)),
                    b.valid_from,
                    b.valid_until,
                    gettext("有效") if b.active else gettext("已下架"),
                ]
                for b in rows_all
            ),
            fmt,
        )
    page = keyset_page(fetch, lambda b: b.id)
    return render_template(
        "admin/benefits.html",
        page=page,
        can_create=policy.may_create_benefits(g.user),
        can_edit=lambda b: policy.may_edit_benefit(
            g.user, county_id=b.county_id, township_id=b.township_id
        ),
        partner_names=queries.benefit_partner_labels(db.session(), page.items),
        terms=_benefit_terms,
        categories=[(c, CATEGORY_LABELS[c]) for c in PARTNER_CATEGORIES],
        funder_label=lambda f: FUNDER_LABELS.get(f, f),
    )


def _benefit_form_choices(form: BenefitForm) -> None:
    partners = queries.list_partners(db.session(), g.user, active=True, limit=500)
    form.partner_id.choices = [(0, gettext("(不指定)"))] + [(p.id, p.name) for p in partners]


def _benefit_data(form: BenefitForm) -> dict[str, Any]:
    kind = form.kind.data
    data: dict[str, Any] = {
        "title_zh": (form.title_zh.data or "").strip(),
        "title_en": (form.title_en.data or "").strip(),
        "description": (form.description.data or "").strip(),
        "kind": kind,
        "percent_bp": int(form.percent.data * 100) if form.percent.data is not None else None,
        "cap_fen": int(form.cap_yuan.data * 100) if form.cap_yuan.data is not None else None,
        "fixed_fen": int(form.fixed_yuan.data * 100) if form.fixed_yuan.data is not None else None,
        "min_level_rank": form.min_level_rank.data,
        "limit_per_day": form.limit_per_day.data,
        "limit_per_month": form.limit_per_month.data,
        "limit_per_year": form.limit_per_year.data,
        "one_at_a_time": bool(form.one_at_a_time.data),
        "valid_from": form.valid_from.data,
        "valid_until": form.valid_until.data,
        "funded_by": form.funded_by.data,
    }
    return data


_BENEFIT_ALIASES = {
    "percent_bp": "percent",
    "cap_fen": "cap_yuan",
    "fixed_fen": "fixed_yuan",
}


@bp.route("/benefits/new", methods=["GET", "POST"])
@staff_page(*ADMINS)
def benefit_new() -> Any:
    form = BenefitForm()
    _benefit_form_choices(form)
    if request.method == "GET" and arg_int("partner"):
        form.scope.data = "partner"
        form.partner_id.data = arg_int("partner")
    if form.validate_on_submit():
        data = _benefit_data(form)
        if form.scope.data == "partner":
            data["partner_id"] = _partner(form.partner_id.data or 0).id
        else:
            data["partner_category"] = form.partner_category.data
        try:
            benefit = benefits.create_benefit(db.session(), g.user, data)
        except ValidationFailed as exc:
            apply_service_errors(form, exc, _BENEFIT_ALIASES)
        else:
            db.session.commit()
            flash(gettext("权益“%(t)s”已添加", t=benefit.title_zh), "success")
            return redirect(url_for("admin.benefit_list"))
    return form_page(
        form=form,
        title=gettext("添加惠民权益"),
        submit=gettext("添加权益"),
        back_url=url_for("admin.benefit_list"),
        intro=gettext("最低等级按评级方案的等级序号填写:1为最低一级。"),
    )


def _benefit(benefit_id: int) -> Benefit:
    return benefits.get_benefit(db.session(), g.user, benefit_id)


@bp.route("/benefits/<int:benefit_id>/edit", methods=["GET", "POST"])
@staff_page(*ADMINS)
def benefit_edit(benefit_id: int) -> Any:
    benefit = _benefit(benefit_id)
    form = BenefitForm(obj=benefit)
    _benefit_form_choices(form)
    # The scope of a line does not change (a line for another place is a new line).
    del form.scope, form.partner_category, form.partner_id
    if request.method == "GET":
        form.percent.data = Decimal(benefit.percent_bp) / 100 if benefit.percent_bp else None
        form.cap_yuan.data = Decimal(benefit.cap_fen) / 100 if benefit.cap_fen else None
        form.fixed_yuan.data = Decimal(benefit.fixed_fen) / 100 if benefit.fixed_fen else None
    if form.validate_on_submit():
        try:
            benefits.update_benefit(db.session(), g.user, benefit, _benefit_data(form))
        except ValidationFailed as exc:
            db.session.rollback()
            apply_service_errors(form, exc, _BENEFIT_ALIASES)
        else:
            db.session.commit()
            flash(gettext("权益已保存"), "success")
            return redirect(url_for("admin.benefit_list"))
    return form_page(
        form=form,
        title=gettext("编辑权益:%(t)s", t=benefit.title_zh),
        submit=gettext("保存"),
        back_url=url_for("admin.benefit_list"),
    )


@bp.route("/benefits/<int:benefit_id>/deactivate", methods=["GET", "POST"])
@staff_page(*ADMINS)
def benefit_deactivate(benefit_id: int) -> Any:
    benefit = _benefit(benefit_id)
    form = CheckboxConfirmForm()
    if form.validate_on_submit():
        try:
            benefits.deactivate_benefit(db.session(), g.user, benefit)
        except DomainError:
            db.session.rollback()
            raise
        db.session.commit()
        flash(gettext("权益已下架"), "success")
        return redirect(url_for("admin.benefit_list"))
    return render_template(
        "admin/confirm.html",
        form=form,
        title=gettext("下架权益"),
        warning=gettext("下架后农户在商户处不再享受此权益;已有的使用记录保留。"),
        submit=gettext("下架"),
        facts=[(gettext("权益名称"), benefit.title_zh), (gettext("内容"), _benefit_terms(benefit))],
        back_url=url_for("admin.benefit_list"),
    ), (400 if form.errors else 200)
