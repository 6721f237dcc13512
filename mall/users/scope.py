"""Region scoping: what a staff user may see and change.

A county admin or auditor sees their county; a township admin, cashier or village clerk
sees their township (a clerk writes only in their village). Every admin query goes through
`restrict`, and every single-object access through `ensure_visible`, so isolation is one
rule in one place. Out-of-scope objects answer 404, not 403: existence is not disclosed.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute

from mall.errors import Forbidden, NotFound
from mall.users.models import User

T = TypeVar("T")

COUNTY_ROLES = frozenset({"county_admin", "auditor"})
WRITE_ROLES = frozenset({"county_admin", "township_admin", "village_clerk"})


def restrict(
    stmt: Select[T],
    user: User,
    *,
    county_col: InstrumentedAttribute[Any],
    township_col: InstrumentedAttribute[Any],
) -> Select[T]:
    if user.role in COUNTY_ROLES:
        return stmt.where(county_col == user.county_id)
    return stmt.where(township_col == user.township_id)


def can_see(user: User, *, county_id: int | None, township_id: int | None) -> bool:
    if user.role in COUNTY_ROLES:
        return county_id == user.county_id
    return township_id is not None and township_id == user.township_id


def ensure_visible(user: User, obj: Any, code: str = "not_found") -> Any:
    """Return `obj` if the user's region covers it, else raise 404."""
    if obj is None or not can_see(
        user,
        county_id=getattr(obj, "county_id", None),
        township_id=getattr(obj, "township_id", None),
    ):
        raise NotFound(code)
    return obj


def ensure_can_write(user: User, *, village_id: int | None = None) -> None:
    """Auditors never write; a village clerk writes only in their own village."""
    if user.role not in WRITE_ROLES:
        raise Forbidden()
    if user.role == "village_clerk" and village_id is not None and village_id != user.village_id:
        raise NotFound()
