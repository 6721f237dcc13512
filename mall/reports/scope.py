"""The regions a report covers: the caller's county or township, optionally narrowed."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from mall.errors import NotFound
from mall.partners.models import Partner
from mall.regions.models import Region
from mall.users.models import User
from mall.users.scope import COUNTY_ROLES, can_see

REPORT_ROLES = ("county_admin", "township_admin", "auditor")


@dataclass(frozen=True)
class Scope:
    county_id: int
    township_ids: list[int]
    village_id: int | None = None


def report_scope(session: Session, user: User, region_id: int | None = None) -> Scope:
    """The townships (ledger tenants) the user may report on, narrowed to `region_id`
    (a county, township or village the user can see; otherwise 404)."""
    if user.role in COUNTY_ROLES:
        townships = list(
            session.scalars(
                select(Region.id)
                .where(Region.county_id == user.county_id, Region.kind == "township")
                .order_by(Region.id)
            )
        )
    else:
        townships = [user.township_id] if user.township_id is not None else []
    scope = Scope(user.county_id, townships)
    if region_id is None:
        return scope
    region = session.get(Region, region_id)
    own_county = (
        region is not None
        and region.kind == "county"
        and region.id == user.county_id
        and user.role in COUNTY_ROLES
    )
    if region is None or not (
        own_county or can_see(user, county_id=region.county_id, township_id=region.township_id)
    ):
        raise NotFound()
    assert region is not None
    if region.kind == "county":
        return scope
    assert region.township_id is not None
    village = region.id if region.kind == "village" else None
    return Scope(user.county_id, [region.township_id], village)


def scope_partner_ids(session: Session, scope: Scope) -> list[int]:
    """Partners located in the scope's townships (benefit uses are booked by partner)."""
    return list(
        session.scalars(
            select(Partner.id)
            .where(Partner.township_id.in_(scope.township_ids))
            .order_by(Partner.id)
        )
    )
