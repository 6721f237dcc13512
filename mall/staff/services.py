"""Staff accounts: creation with the role's scope checked, and deactivation (audited)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from mall.audit import services as audit
from mall.db import add_unique, lock_row
from mall.errors import Conflict, ValidationFailed
from mall.partners.models import Partner
from mall.regions.models import Region
from mall.security.passwords import hash_password
from mall.users import policy
from mall.users.models import ROLES, User
from mall.users.scope import ensure_visible

# The region kind each role is scoped to.
ROLE_REGION_KIND = {
    "county_admin": "county",
    "auditor": "county",
    "township_admin": "township",
    "village_clerk": "village",
    "cashier": "township",
}


def ensure_may_deactivate(actor: User, target: User) -> None:
    """404 outside the actor's region; 403 for oneself or a role the actor does not manage."""
    ensure_visible(actor, target)
    policy.ensure(policy.may_deactivate_user(actor, target))


def deactivate_user(session: Session, actor: User, target: User) -> bool:
    """Turn a staff account off (its sessions and tokens are refused at once, see
    mall.http.auth). Only over a role the actor manages, in the actor's region, never
    oneself. Audited; flushes only. False when the account was already off."""
    ensure_may_deactivate(actor, target)
    # Lock and re-read the account: two admins (or a double click) turning it off at once
    # both saw it active and both audited the change; the second now sees it off.
    lock_row(session, target)
    if not target.active:
        return False
    target.active = False
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="user.deactivate",
        object_type="user",
        object_id=target.id,
        county_id=target.county_id,
        township_id=target.township_id,
        before={"active": True},
        after={"active": False},
    )
    return True


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: str,
    region: Region,
    display_name: str = "",
    partner: Partner | None = None,
) -> User:
    if role not in ROLES:
        raise ValidationFailed(details={"fields": {"role": list(ROLES)}})
    if region.kind != ROLE_REGION_KIND[role]:
        raise ValidationFailed(
            details={"fields": {"region_id": [f"a {role} belongs to a {ROLE_REGION_KIND[role]}"]}}
        )
    if role == "cashier" and (partner is None or partner.township_id != region.id):
        raise ValidationFailed(
            details={"fields": {"partner_id": ["a cashier belongs to a partner of the township"]}}
        )
    if len(password) < 10:
        raise ValidationFailed(details={"fields": {"password": ["at least 10 characters"]}})
    user = User(
        username=username.strip(),
        display_name=display_name or username,
        role=role,
        password_hash=hash_password(password),
        region_id=region.id,
        county_id=region.county_id or region.id,
        township_id=region.township_id,
        village_id=region.id if region.kind == "village" else None,
        partner_id=partner.id if partner else None,
        active=True,
    )
    add_unique(session, user, Conflict(details={"fields": {"username": ["already taken"]}}))
    return user
