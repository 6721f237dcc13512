"""The dashboard on the landing page: five charts over the user's region, one SQL aggregate
each (admin.queries), drawn as inline SVG (admin.charts) with the numbers in tables too."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from flask import g, render_template
from flask_babel import get_locale, gettext
from sqlalchemy.orm import Session

from admin import queries
from admin.blueprint import bp, staff_page
from admin.charts import Series, bar_chart, hbar_chart, line_chart
from admin.forms import CATEGORY_LABELS
from mall.clock import business_date
from mall.extensions import db
from mall.ratings.schemes import scheme_for_region
from mall.regions.models import Region
from mall.users.models import User

MONTHS = 12


def _month_start(today: date, months: int) -> date:
    y, m = today.year, today.month - (months - 1)
    while m <= 0:
        y, m = y - 1, m + 12
    return date(y, m, 1)


def _month_label(key: str) -> str:
    return gettext("%(m)s月", m=int(key.split("-")[1]))


def _level_labels(session: Session, user: User) -> dict[str, str]:
    """Level code → its name in the scheme of the user's region (一星级, AAA...)."""
    region = session.get(Region, user.region_id)
    if region is None:
        return {}
    english = str(get_locale() or "").startswith("en")
    return {
        lv.code: (lv.label_en if english else lv.label_zh)
        for lv in scheme_for_region(session, region).levels
    }


def dashboard_context(session: Session, user: User, today: date | None = None) -> dict[str, Any]:
    today = today or business_date()
    since = _month_start(today, MONTHS)
    keys = queries.month_keys(today, MONTHS)
    labels = [_month_label(k) for k in keys]

    moved = queries.ledger_by_month(
        session, user, (*queries.POINTS_KINDS, *queries.INTEGRITY_KINDS), since
    )

    def by_month(kind: str, scale: int = 1) -> list[float]:
        return [moved.get((kind, k), 0) / scale for k in keys]

    points_series = [
        Series(gettext("发放积分"), by_month("points_issued")),
        Series(gettext("兑换积分"), by_month("points_redeemed")),
    ]
    integrity_series = [
        Series(gettext("发放诚信金"), by_month("integrity_granted", 100)),
        Series(gettext("使用诚信金"), by_month("integrity_spent", 100)),
        Series(gettext("到期诚信金"), by_month("integrity_expired", 100)),
    ]

    spend_since = today - timedelta(days=89)
    partners = queries.spending_by_partner(session, user, spend_since)

    village_names = {v.id: v.name for v in queries.villages(session, user)}
    counts: dict[int, dict[str | None, int]] = defaultdict(dict)
    levels: set[str | None] = set()
    for village_id, level, n in queries.households_by_level(session, user):
        counts[village_id][level] = n
        levels.add(level)
    names = _level_labels(session, user)
    level_order: list[str | None] = sorted((lv for lv in levels if lv is not None), key=str)
    if None in levels:
        level_order.append(None)
    village_ids = [v for v in village_names if v in counts]
    level_series = [
        Series(
            names.get(lv, lv) if lv is not None else gettext("未评级"),
            [counts[v].get(lv, 0) for v in village_ids],
        )
        for lv in level_order
    ]

    uses = queries.benefit_uses_by_category(session, user, spend_since)
    totals = queries.household_counts(session, user)
    month_rows = [
        {
            "month": k,
            "issued": moved.get(("points_issued", k), 0),
            "redeemed": moved.get(("points_redeemed", k), 0),
            "granted": moved.get(("integrity_granted", k), 0),
            "spent": moved.get(("integrity_spent", k), 0),
            "expired": moved.get(("integrity_expired", k), 0),
        }
        for k in keys
    ]
    return {
        "households_active": totals.get("active", 0),
        "households_frozen": totals.get("frozen", 0) + totals.get("revoked", 0),
        "points_issued_year": sum(r["issued"] for r in month_rows),
        "points_redeemed_year": sum(r["redeemed"] for r in month_rows),
        "integrity_granted_year": sum(r["granted"] for r in month_rows),
        "integrity_spent_year": sum(r["spent"] for r in month_rows),
        "month_rows": month_rows,
        "partners": partners,
        "uses": uses,
        "points_chart": line_chart(
            labels,
            points_series,
            title=gettext("每月积分发放与兑换"),
            y_label=gettext("积分"),
            x_label=gettext("月份(%(a)s 至 %(b)s)", a=keys[0], b=keys[-1]),
        ),
        "integrity_chart": bar_chart(
            labels,
            integrity_series,
            title=gettext("每月诚信金发放、使用与到期"),
            y_label=gettext("金额(元)"),
            x_label=gettext("月份(%(a)s 至 %(b)s)", a=keys[0], b=keys[-1]),
        ),
        "partner_chart": hbar_chart(
            [p.name for p in partners],
            [p.amount_fen / 100 for p in partners],
            title=gettext("近90天各商户消费额"),
            x_label=gettext("消费额(元)"),
        )
        if partners
        else None,
        "level_chart": bar_chart(
            [village_names[v] for v in village_ids],
            level_series,
            title=gettext("各村农户信用等级分布"),
            y_label=gettext("户数"),
            x_label=gettext("村"),
            stacked=True,
        )
        if village_ids
        else None,
        "uses_chart": bar_chart(
            [str(CATEGORY_LABELS.get(c, c)) for c, _n, _f in uses],
            [Series(gettext("使用次数"), [n for _c, n, _f in uses])],
            title=gettext("近90天各类商户权益使用次数"),
            y_label=gettext("次数"),
            x_label=gettext("商户类别"),
        )
        if uses
        else None,
    }


@bp.get("/")
@staff_page()
def index() -> str:
    user = g.user
    region = db.session.get(Region, user.region_id)
    charts = dashboard_context(db.session(), user) if user.role != "cashier" else None
    return render_template(
        "admin/index.html", user=user, region_name=region.name if region else "", charts=charts
    )
