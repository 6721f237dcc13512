"""What the admin pages share: roles, scope checks for objects, keyset pages, exports, and
turning a service's ValidationFailed into messages beside the form's fields."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urlencode

from flask import Response, render_template, request
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm

from mall.errors import DomainError, Forbidden, NotFound, ValidationFailed
from mall.reports import exports
from mall.users.models import User
from mall.users.policy import ADMIN_ROLES, READER_ROLES, STAFF_ROLES
from mall.users.scope import WRITE_ROLES, ensure_visible

T = TypeVar("T")

# Who opens which pages. Cashiers use the till, not the admin pages.
# The role sets are named once, in mall.users.policy.
STAFF = STAFF_ROLES
ADMINS = ADMIN_ROLES
READERS = READER_ROLES
PAGE_SIZE = 50
EXPORT_LIMIT = 100_000


def can_write(user: User) -> bool:
    return user.role in WRITE_ROLES


def require_writer(user: User) -> None:
    """Auditors (and anyone else outside WRITE_ROLES) read only: refused server-side too."""
    if not can_write(user):
        raise Forbidden()


def in_scope(user: User, obj: Any) -> Any:
    """The object if the user's region covers it, else 404. A village clerk sees only their
    village's objects (those that have a village)."""
    ensure_visible(user, obj)
    village_id = getattr(obj, "village_id", None)
    if user.role == "village_clerk" and village_id is not None and village_id != user.village_id:
        raise NotFound()
    return obj


def arg_int(name: str) -> int | None:
    value = (request.args.get(name) or "").strip()
    return int(value) if value.isdigit() and len(value) < 19 else None


def arg_str(name: str, limit: int = 100) -> str | None:
    value = (request.args.get(name) or "").strip()
    return value[:limit] or None


def arg_date(name: str) -> date | None:
    value = (request.args.get(name) or "").strip()
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@dataclass
class KeysetPage(Generic[T]):
    """One page of a list, newest first; `next_url` opens the page after it (or None)."""

    items: list[T]
    next_url: str | None


def keyset_page(
    fetch: Callable[[int | None, int], Sequence[T]],
    key: Callable[[T], int],
    *,
    cursor_arg: str = "after",
    limit: int = PAGE_SIZE,
) -> KeysetPage[T]:
    """`fetch(after, limit)` is a service's keyset query; one extra row says a next page exists."""
    rows = list(fetch(arg_int(cursor_arg), limit + 1))
    next_url = None
    if len(rows) > limit:
        rows = rows[:limit]
        args = {k: v for k, v in request.args.items() if k != cursor_arg}
        args[cursor_arg] = str(key(rows[-1]))
        next_url = request.path + "?" + urlencode(args)
    return KeysetPage(rows, next_url)


def walk(
    fetch: Callable[[int | None, int], Sequence[T]],
    key: Callable[[T], int],
    *,
    batch: int = 500,
    cap: int = EXPORT_LIMIT,
) -> Iterable[T]:
    """Every row of a keyset query, in pages (for exports), at most `cap`."""
    after: int | None = None
    seen = 0
    while seen < cap:
        rows = fetch(after, batch)
        yield from rows
        seen += len(rows)
        if len(rows) < batch:
            return
        after = key(rows[-1])


def _disposition(filename: str) -> str:
    return f"attachment; filename*=UTF-8''{quote(filename)}"


def export_response(
    filename: str, headers: Sequence[str], rows: Iterable[Sequence[Any]], fmt: str = "csv"
) -> Response:
    """A CSV (UTF-8 with BOM, so Excel reads the Chinese) or an xlsx download, written by
    `mall.reports.exports` (which keeps every text cell from running as a formula)."""
    body, mimetype, ext = exports.export(
        "xlsx" if fmt == "xlsx" else "csv", filename, headers, rows
    )
    return Response(
        body,
        mimetype=mimetype,
        headers={"Content-Disposition": _disposition(f"{filename}.{ext}")},
    )


# The services answer in field names with English hints; the pages say it in Chinese.
_FIELD_HINTS: dict[str, Any] = {
    "id_number": _l("身份证号须为18位:17位数字加1位数字或X"),
    "phone": _l("请填写11位手机号码"),
    "head_name": _l("户主姓名须为1至30个字"),
    "reason": _l("请填写原因"),
    "pin": _l("密码须为6位数字,且不能全部相同或为连续数字"),
    "new_pin": _l("密码须为6位数字,且不能全部相同或为连续数字"),
    "username": _l("该用户名已被使用"),
    "password": _l("密码至少10个字符"),
    "occurred_on": _l("日期须在过去一年之内"),
    "rule_code": _l("该积分规则在此处不可用"),
    "subject": _l("该户不在本批次的范围内"),
    "points": _l("分值不能为0"),
    "code": _l("编码须为1至32个字符"),
    "level_code": _l("请选择比当前更低的等级"),
    "grounds": _l("请填写复议理由"),
    "answer": _l("请填写答复"),
}


def service_errors(exc: DomainError) -> dict[str, list[str]]:
    """Field name → Chinese messages for a ValidationFailed/Conflict from a service."""
    fields = (exc.details or {}).get("fields") or {}
    out: dict[str, list[str]] = {}
    for name, hints in fields.items():
        hint = _FIELD_HINTS.get(name)
        detail = "; ".join(str(h) for h in hints) if isinstance(hints, list) else str(hints)
        out[name] = [str(hint) if hint else gettext("无效:%(detail)s", detail=detail)]
    return out


def apply_service_errors(
    form: FlaskForm, exc: DomainError, aliases: dict[str, str] | None = None
) -> None:
    """Put a service's field errors beside the form's fields (or above the form)."""
    aliases = aliases or {}
    errors = service_errors(exc)
    if not errors:
        errors = {"": [exc.message or gettext("提交的内容有误,请检查后重试")]}
    for name, messages in errors.items():
        field = getattr(form, aliases.get(name, name), None) if name else None
        if field is not None and hasattr(field, "errors"):
            field.errors = [*list(field.errors), *messages]
        else:
            form.form_errors.extend(messages)


def is_validation(exc: Exception) -> bool:
    return isinstance(exc, ValidationFailed)


def fen(value: int | None) -> str:
    """Fen as yuan with two decimals: 12345 → 123.45."""
    if value is None:
        return ""
    sign = "-" if value < 0 else ""
    value = abs(value)
    return f"{sign}{value // 100:,}.{value % 100:02d}"


def form_page(
    form: Any,
    *,
    title: str,
    submit: str,
    back_url: str,
    intro: str | None = None,
    action: str | None = None,
    enctype: str | None = None,
    danger: bool = False,
) -> tuple[str, int]:
    """The one-form page of the admin app; 400 when the form was posted with errors."""
    html = render_template(
        "admin/form_page.html",
        form=form,
        title=title,
        submit=submit,
        back_url=back_url,
        intro=intro,
        action=action,
        enctype=enctype,
        danger=danger,
    )
    return html, (400 if form.errors or getattr(form, "form_errors", None) else 200)
