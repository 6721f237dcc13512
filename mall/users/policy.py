"""Who may do what: one named function per permission question.

Each `may_*` answers a question of (actor, thing) and nothing else: no database, no request.
Services call the matching `ensure_*`, which refuses with the error the contracts name;
views, pages and templates call the same `may_*` only to decide what to show, so a button
appears exactly where the service would accept the action. Region scope (what an actor may
see at all) is `mall.users.scope`; these rules come on top of it.
"""

from __future__ import annotations

from typing import Protocol

from mall.errors import Forbidden
from mall.users.models import User

# Township and county admins run households; clerks record events in their village;
# auditors read; cashiers work at a till.
HOUSEHOLD_ADMIN_ROLES = frozenset({"county_admin", "township_admin"})


class _InTownship(Protocol):
    @property
    def county_id(self) -> int: ...

    @property
    def township_id(self) -> int: ...


def may_change_household_status(actor: User, household: _InTownship) -> bool:
    """Freeze, revoke or reactivate a household: an admin's decision, never a clerk's.

    A freeze stops the household spending anywhere and a revocation ends its rating, so it
    is taken by the admins who answer for the township, with a reason that is audited.
    """
    return actor.active and actor.role in HOUSEHOLD_ADMIN_ROLES


def may_reveal_personal_data(actor: User, household: _InTownship) -> bool:
    """See a household's full ID number or phone (audited): admins only."""
    return actor.active and actor.role in HOUSEHOLD_ADMIN_ROLES


def ensure(allowed: bool) -> None:
    """Refuse with 403 `forbidden` unless `allowed` (the answer of a `may_*`)."""
    if not allowed:
        raise Forbidden()
