"""Region tree operations and inherited settings."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mall.audit import services as audit
from mall.errors import NotFound, ValidationFailed
from mall.regions.models import Region
from mall.users import policy
from mall.users.models import User
from mall.users.scope import ensure_visible

# Defaults for the whole deployment; a county, township or village overrides any key.
DEFAULT_SETTINGS: dict[str, Any] = {
    "rating_scheme": "five_star",
    "point_value_fen": 27,  # Anhui 2023: 31.53M yuan of goods for 119M points
    "integrity_money_carry_over": False,
    "rating_period": "year",
    "notice_days": 7,
    "appeal_days": 10,
    "appeal_answer_days": 5,
    "points_expiry": None,
    "offline_floor_limit_fen": 5000,
    "reservation_days": 7,
    "reservation_max_open": 3,  # open reservations per household (mall.reservations)
    "reservation_max_qty": 5,  # units of one item in one reservation
    "rating_score_weights": {"civility": 30, "visit": 40, "points": 30},
    "settlement_cutoff_hour": 2,  # a business date closes at 02:00 the next morning
    "business_entities_use_wallets": False,  # business entities hold wallets, codes, benefits
    "credit_village_notice_days": 7,  # public notice of a credit-village decision (公示)
}

_PARENT_KIND = {"township": "county", "village": "township"}


def create_region(
    session: Session,
    *,
    kind: str,
    code: str,
    name: str,
    parent: Region | None = None,
    settings: dict[str, Any] | None = None,
) -> Region:
    expected_parent = _PARENT_KIND.get(kind)
    if kind not in ("county", "township", "village"):
        raise ValidationFailed(details={"fields": {"kind": ["county, township or village"]}})
    if expected_parent is None and parent is not None:
        raise ValidationFailed(details={"fields": {"parent_id": ["a county has no parent"]}})
    if expected_parent is not None and (parent is None or parent.kind != expected_parent):
        raise ValidationFailed(details={"fields": {"parent_id": [f"must be a {expected_parent}"]}})
    region = Region(
        kind=kind,
        code=code,
        name=name,
        parent_id=parent.id if parent else None,
        settings=settings or {},
    )
    if kind == "township" and parent is not None:
        region.county_id = parent.id
    elif kind == "village" and parent is not None:
        region.county_id = parent.county_id
        region.township_id = parent.id
    session.add(region)
    session.flush()
    if kind == "county":
        region.county_id = region.id
    elif kind == "township":
        region.township_id = region.id
    session.flush()
    return region


def get_region(session: Session, region_id: int) -> Region:
    region = session.get(Region, region_id)
    if region is None:
        raise NotFound()
    return region


def serialize_on(session: Session, region_id: int) -> None:
    """Lock the region's row until the transaction ends, so that check-then-insert work for
    this region (one open application per village, one assessment per plan and village)
    runs one at a time: a concurrent caller waits here, then sees the first one's rows.
    FOR NO KEY UPDATE: rows that merely reference the region (households, ...) are not
    held up. A no-op on SQLite, whose write transactions are serial anyway."""
    session.execute(select(Region.id).where(Region.id == region_id).with_for_update(key_share=True))


def ancestry(session: Session, region: Region) -> list[Region]:
    """The region and its ancestors, nearest first (at most three rows, one query)."""
    ids = [i for i in (region.id, region.township_id, region.county_id) if i is not None]
    rows = {r.id: r for r in session.scalars(select(Region).where(Region.id.in_(ids)))}
    seen: list[Region] = []
    for i in ids:
        if i in rows and rows[i] not in seen:
            seen.append(rows[i])
    return seen


def effective_settings(session: Session, region: Region) -> dict[str, Any]:
    merged = dict(DEFAULT_SETTINGS)
    for level in reversed(ancestry(session, region)):
        merged.update(level.settings or {})
    return merged


def change_settings(
    session: Session, actor: User, region: Region, changes: dict[str, Any]
) -> dict[str, Any]:
    """A staff member overrides settings at `region` (404 outside their scope, 403 unless
    `policy.may_edit_region_settings`); audited with before and after. Flushes only."""
    ensure_visible(actor, region)
    policy.ensure(policy.may_edit_region_settings(actor, region))
    before = dict(region.settings or {})
    update_settings(session, region, changes)
    audit.record(
        session,
        actor=actor,
        action="region.settings",
        object_type="region",
        object_id=region.id,
        county_id=region.county_id,
        township_id=region.township_id,
        before=before,
        after=dict(region.settings),
    )
    return region.settings


def update_settings(session: Session, region: Region, changes: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(changes) - set(DEFAULT_SETTINGS))
    if unknown:
        raise ValidationFailed(details={"fields": {k: ["unknown setting"] for k in unknown}})
    region.settings = {**(region.settings or {}), **changes}
    session.flush()
    return region.settings
