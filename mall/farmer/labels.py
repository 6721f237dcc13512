"""Human names for ledger entry kinds, partner categories and benefit kinds (zh source, en
in the catalog)."""

from __future__ import annotations

from flask_babel import LazyString
from flask_babel import lazy_gettext as _l

# Ledger entry kind (and asset, for a captured two-phase payment) -> what the farmer reads.
# The keys on the right are the API's `kind`: stable, machine-readable.
HISTORY_KINDS: dict[str, str] = {
    "points_issued": "points_earned",
    "points_deducted": "points_deducted",
    "points_redeemed": "points_redeemed",
    "points_refunded": "points_refunded",
    "points_expired": "points_expired",
    "integrity_granted": "integrity_granted",
    "integrity_spent": "integrity_spent",
    "integrity_refunded": "integrity_refunded",
    "integrity_expired": "integrity_expired",
    "integrity_clawed_back": "integrity_clawed_back",
    "offline_shortfall": "integrity_spent",
    "reversal": "correction",
}

KIND_LABELS: dict[str, LazyString] = {
    "points_earned": _l("获得积分"),
    "points_deducted": _l("扣减积分"),
    "points_redeemed": _l("积分兑换"),
    "points_refunded": _l("积分退回"),
    "points_expired": _l("积分过期"),
    "integrity_granted": _l("诚信金发放"),
    "integrity_spent": _l("诚信金抵扣"),
    "integrity_refunded": _l("诚信金退回"),
    "integrity_expired": _l("诚信金到期清零"),
    "integrity_clawed_back": _l("诚信金收回"),
    "correction": _l("更正"),
    "other": _l("其他"),
}

CATEGORY_LABELS: dict[str, LazyString] = {
    "supermarket": _l("信用超市"),
    "wholesale": _l("批发部"),
    "hospital": _l("医院"),
    "scenic_spot": _l("景区"),
    "bus": _l("公交"),
    "library": _l("图书馆"),
    "bank": _l("银行"),
    "other": _l("其他"),
}

BENEFIT_KIND_LABELS: dict[str, LazyString] = {
    "percent_discount": _l("折扣优惠"),
    "fixed_discount": _l("立减优惠"),
    "deposit_waiver": _l("免押金"),
    "priority_service": _l("优先服务"),
    "free_item": _l("免费项目"),
}

APPEAL_STATUS_LABELS: dict[str, LazyString] = {
    "open": _l("等待村里答复"),
    "upheld": _l("维持原评级"),
    "changed": _l("已重新评定"),
}

STAR_LABELS = {1: _l("一星级"), 2: _l("二星级"), 3: _l("三星级"), 4: _l("四星级"), 5: _l("五星级")}


def history_kind(entry_kind: str, asset: str) -> str:
    if entry_kind == "hold_captured":
        return "points_redeemed" if asset == "points" else "integrity_spent"
    return HISTORY_KINDS.get(entry_kind, "other")
