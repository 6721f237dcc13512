"""Staff accounts: creation with the role's scope checked."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mall.errors import Conflict, ValidationFailed
from mall.partners.models import Partner
from mall.regions.models import Region
from mall.security.passwords import hash_password
from mall.users.models import ROLES, User

# The region kind each role is scoped to.
ROLE_REGION_KIND = {
    "county_admin": "county",
    "auditor": "county",
    "township_admin": "township",
    "village_clerk": "village",
    "cashier": "township",
}


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
    try:
        # The savepoint opens before the add: begin_nested() flushes pending objects first.
        with session.begin_nested():
            session.add(user)
            session.flush()
    except IntegrityError as exc:
        raise Conflict(details={"fields": {"username": ["already taken"]}}) from exc
    return user
