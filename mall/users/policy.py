"""Who may do what: one named function per permission question.

Each `may_*` answers a question of (actor, thing) and nothing else: no database, no request.
Services call `ensure(may_*(...))`, which refuses with the error the contracts name (403
`forbidden`, or a four-eyes code such as `same_person` / `own_batch`); views, pages and
templates call the same `may_*` only to decide what to show, so a button appears exactly
where the service would accept the action. Templates receive the answers (booleans, or a
callable the page passes), never role names. Region scope (what an actor may see at all) is
`mall.users.scope`, checked first and answering 404; these rules come on top of it.

The named role sets below are the only place roles are grouped; views and pages that still
open by role (`require_staff`, `staff_page`) take one of them rather than spelling a copy.
"""

from __future__ import annotations

from typing import Any, Protocol

from mall.errors import Forbidden
from mall.users.models import User

# Township and county admins run households, rules, batches, reviews and settings; clerks
# record events in their village; auditors read; cashiers work at a till.
ADMIN_ROLES: tuple[str, ...] = ("county_admin", "township_admin")
# Everyone who works in the admin pages and the staff read API (cashiers use the till).
STAFF_ROLES: tuple[str, ...] = ("county_admin", "township_admin", "village_clerk", "auditor")
# Staff who record and change things (auditors read only).
WRITER_ROLES: tuple[str, ...] = ("county_admin", "township_admin", "village_clerk")
# Admins and the auditor: who reads settings, partners, users and the audit log.
READER_ROLES: tuple[str, ...] = ("county_admin", "township_admin", "auditor")
HOUSEHOLD_ADMIN_ROLES = frozenset(ADMIN_ROLES)

# Who may create (and deactivate) accounts of which role: a county admin staffs the county,
# a township admin its clerks and cashiers.
_MANAGEABLE_ROLES: dict[str, frozenset[str]] = {
    "county_admin": frozenset(
        {"county_admin", "township_admin", "village_clerk", "auditor", "cashier"}
    ),
    "township_admin": frozenset({"village_clerk", "cashier"}),
}

# The credit-village workflow: which role takes which step (the status each step starts
# from is the workflow's business, `mall.villages.workflow.STEP_FROM`).
VILLAGE_STEP_ROLES: dict[str, str] = {
    "town_review": "township_admin",
    "county_review": "county_admin",
    "notice": "county_admin",
    "decide": "county_admin",
}


class _InTownship(Protocol):
    @property
    def county_id(self) -> int: ...

    @property
    def township_id(self) -> int: ...


class _Region(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def kind(self) -> str: ...

    @property
    def township_id(self) -> int | None: ...


class _Rule(Protocol):
    @property
    def township_id(self) -> int | None: ...


class _Made(Protocol):
    @property
    def maker_id(self) -> int: ...


class _Reviewed(Protocol):
    @property
    def county_reviewer_id(self) -> int | None: ...


class _Scored(Protocol):
    @property
    def scored_by(self) -> int | None: ...


def _admin(actor: User) -> bool:
    return bool(actor.active) and actor.role in ADMIN_ROLES


def _other_than(actor: User, first_id: int | None) -> bool:
    """The four-eyes rule: the second signature is not the first one's."""
    return first_id is None or first_id != actor.id


def ensure(allowed: bool, code: str = "forbidden", details: dict[str, Any] | None = None) -> None:
    """Refuse with 403 (`forbidden`, or the contract's code) unless `allowed`, the answer of
    a `may_*`."""
    if not allowed:
        raise Forbidden(code, details=details)


# ---------------------------------------------------------------- households


def may_manage_partners(actor: User) -> bool:
    """Enrol and edit partners, their terminals, cashiers and goods (in the actor's region):
    the admins who sign the partner agreements. Auditors and clerks read."""
    return _admin(actor)


def may_create_benefits(actor: User) -> bool:
    """Add lines to the benefit list: the admins (a township admin's lines are their
    township's; a county-wide line is the county admin's, `may_edit_benefit`)."""
    return _admin(actor)


def may_edit_benefit(actor: User, *, county_id: int, township_id: int | None) -> bool:
    """Edit or withdraw a line of the benefit list: a county admin any line of their county, a
    township admin only their own township's lines (not the county-wide ones)."""
    if not actor.active:
        return False
    if actor.role == "county_admin":
        return county_id == actor.county_id
    return (
        actor.role == "township_admin"
        and township_id is not None
        and township_id == actor.township_id
    )


def may_change_household_status(actor: User, household: _InTownship) -> bool:
    """Freeze, revoke or reactivate a household: an admin's decision, never a clerk's.

    A freeze stops the household spending anywhere and a revocation ends its rating, so it
    is taken by the admins who answer for the township, with a reason that is audited.
    """
    return _admin(actor)


def may_reveal_personal_data(actor: User, household: _InTownship) -> bool:
    """See a household's full ID number or phone (audited): admins only."""
    return _admin(actor)


# ---------------------------------------------------------------- earning rules


def may_create_point_rule(actor: User, region: _Region) -> bool:
    """Add an earning rule at `region`: a county admin anywhere in the county (the county's
    own rules only by them); a township admin in their township and its villages."""
    if not actor.active:
        return False
    if actor.role == "county_admin":
        return True
    return (
        actor.role == "township_admin"
        and region.kind != "county"
        and region.township_id is not None
        and region.township_id == actor.township_id
    )


def may_edit_point_rule(actor: User, rule: _Rule) -> bool:
    """Edit an earning rule: a county admin any rule of the county; a township admin only the
    rules defined in their own township (never the county's rules they inherit)."""
    if not actor.active:
        return False
    if actor.role == "county_admin":
        return True
    return (
        actor.role == "township_admin"
        and rule.township_id is not None
        and rule.township_id == actor.township_id
    )


# ---------------------------------------------------------------- point batches


def may_check_point_batches(actor: User) -> bool:
    """Approve or reject submitted batches at all: the admins (the checkers)."""
    return _admin(actor)


def may_decide_point_batch(actor: User, batch: _Made) -> bool:
    """Approve or reject this batch: a checker who did not make it (refusal: `own_batch`)."""
    return may_check_point_batches(actor) and _other_than(actor, batch.maker_id)


# ---------------------------------------------------------------- credit villages


def may_act_at_village_step(actor: User, stage: str) -> bool:
    """The role rule of the workflow: town review by a township admin; county review,
    notice and decision by a county admin."""
    return bool(actor.active) and VILLAGE_STEP_ROLES.get(stage) == actor.role


def may_take_village_step(actor: User, application: _Reviewed, stage: str) -> bool:
    """Take `stage` on this application: the step's role, and the decision by a county
    admin other than the re-reviewer (refusal: `same_person`)."""
    if not may_act_at_village_step(actor, stage):
        return False
    return stage != "decide" or _other_than(actor, application.county_reviewer_id)


# ---------------------------------------------------------------- village assessments


def may_create_assessment_plan(actor: User) -> bool:
    """Define a plan (indicators, bands, fund) for the county: a county admin."""
    return bool(actor.active) and actor.role == "county_admin" and actor.county_id is not None


def may_work_on_assessments(actor: User) -> bool:
    """Score, review and pay village assessments at all: the admins."""
    return _admin(actor)


def may_score_village(actor: User, village: _Region) -> bool:
    """Score (or rescore) a village: an admin (region scope decides which villages)."""
    return may_work_on_assessments(actor)


def may_review_assessment(actor: User, assessment: _Scored) -> bool:
    """Approve or send back a score: an admin other than the scorer (refusal: `same_person`)."""
    return may_work_on_assessments(actor) and _other_than(actor, assessment.scored_by)


def may_pay_assessment(actor: User, assessment: _Scored) -> bool:
    """Pay an approved reward into the collective's account: an admin."""
    return may_work_on_assessments(actor)


# ---------------------------------------------------------------- staff accounts


def may_manage_role(actor: User, role: str) -> bool:
    """Create (or deactivate) an account of `role`."""
    return bool(actor.active) and role in _MANAGEABLE_ROLES.get(actor.role, frozenset())


def may_manage_users(actor: User) -> bool:
    """Create accounts of any role at all (the "new user" button)."""
    return bool(actor.active) and bool(_MANAGEABLE_ROLES.get(actor.role))


def manageable_roles(actor: User) -> frozenset[str]:
    """The roles `actor` may create, for the form's choices."""
    return _MANAGEABLE_ROLES.get(actor.role, frozenset()) if actor.active else frozenset()


def may_deactivate_user(actor: User, target: User) -> bool:
    """Turn an account off: one of a role the actor manages, never one's own."""
    return target.id != actor.id and may_manage_role(actor, target.role)


# ---------------------------------------------------------------- regions


def may_edit_region_settings(actor: User, region: _Region) -> bool:
    """Override settings of a county or township: a county admin any of the county; a
    township admin only their own township. Village settings are not edited by staff."""
    if not actor.active or region.kind == "village":
        return False
    if actor.role == "county_admin":
        return True
    return (
        actor.role == "township_admin"
        and region.kind == "township"
        and region.id == actor.township_id
    )
