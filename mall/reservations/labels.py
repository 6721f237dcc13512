"""Words the household sees for a reservation's state and why it ended."""

from __future__ import annotations

from flask_babel import LazyString
from flask_babel import lazy_gettext as _l

STATUS_LABELS: dict[str, LazyString] = {
    "open": _l("待取货"),
    "picked_up": _l("已取货"),
    "cancelled": _l("已取消"),
    "expired": _l("已过期"),
}

END_REASON_LABELS: dict[str, LazyString] = {
    "cancelled_by_household": _l("您已取消预约,积分和商品已退回。"),
    "not_collected_in_time": _l("超过取货期限未取货,预约已自动取消,积分和商品已退回。"),
}


def end_reason_label(code: str | None) -> str | None:
    return str(END_REASON_LABELS[code]) if code in END_REASON_LABELS else None


def status_label(code: str) -> str:
    return str(STATUS_LABELS.get(code, code))
