"""What a rating's status is called on a page (zh source, en in the catalog): the admin pages
and the household's own rating page read the same words."""

from __future__ import annotations

from flask_babel import LazyString
from flask_babel import lazy_gettext as _l

RATING_STATUS_LABELS: dict[str, LazyString] = {
    "draft": _l("草稿"),
    "notice": _l("公示中"),
    "appealed": _l("复议中"),
    "effective": _l("生效"),
    "superseded": _l("已被替代"),
    "expired": _l("已到期"),
    "revoked": _l("已被撤销"),
    "withdrawn": _l("已撤回"),
}


def rating_status_label(status: str) -> str:
    return str(RATING_STATUS_LABELS.get(status, status))
