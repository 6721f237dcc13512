"""Pushes from the provincial credit platform, each idempotent by the platform's own id.

A repeated push with the same content returns what the first one made; the same id with
different content is refused (409 idempotency_conflict), so a retry can never fork a record.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mall.audit import services as audit
from mall.clock import business_date
from mall.errors import Conflict, NotFound, ValidationFailed
from mall.ratings import services as ratings
from mall.ratings.models import Rating
from mall.regions.models import Region
from mall.subjects.models import CreditSubject
from mall.subjects.services import MemberInput, create_household, get_by_ref
from mall.upstream.models import UpstreamLink
from mall.users.models import User


def _hash(payload: dict[str, Any]) -> str:
    raw = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True)
class Pushed:
    local_id: str
    created: bool


def _replay(
    session: Session, county_id: int, kind: str, upstream_id: str, req_hash: str
) -> Pushed | None:
    link = session.scalar(
        select(UpstreamLink).where(
            UpstreamLink.county_id == county_id,
            UpstreamLink.kind == kind,
            UpstreamLink.upstream_id == upstream_id,
        )
    )
    if link is None:
        return None
    if link.request_hash != req_hash:
        raise Conflict("idempotency_conflict", details={"upstream_id": upstream_id})
    return Pushed(link.local_id, created=False)


def _link(
    session: Session, county_id: int, kind: str, upstream_id: str, local_id: str, req_hash: str
) -> None:
    try:
        with session.begin_nested():
            session.add(
                UpstreamLink(
                    county_id=county_id,
                    kind=kind,
                    upstream_id=upstream_id,
                    local_id=local_id,
                    request_hash=req_hash,
                )
            )
            session.flush()
    except IntegrityError as exc:  # the same push, concurrently: the other one won
        raise Conflict("request_in_progress", details={"upstream_id": upstream_id}) from exc


def push_household(session: Session, actor: User, data: dict[str, Any]) -> Pushed:
    req_hash = _hash(data)
    found = _replay(session, actor.county_id, "household", data["upstream_id"], req_hash)
    if found is not None:
        return found
    village = session.scalar(
        select(Region).where(
            Region.code == data["village_code"],
            Region.kind == "village",
            Region.county_id == actor.county_id,
        )
    )
    if village is None:
        raise ValidationFailed(
            details={"fields": {"village_code": ["no such village in the county"]}}
        )
    subject = create_household(
        session,
        village=village,
        head_name=data["head_name"],
        id_number=data.get("id_number"),
        phone=data.get("phone"),
        members=[MemberInput(m["name"], m["relation"]) for m in data.get("members", [])],
    )
    _link(session, actor.county_id, "household", data["upstream_id"], subject.ref, req_hash)
    audit.record(
        session,
        actor=actor,
        action="upstream.household",
        object_type="household",
        object_id=subject.ref,
        county_id=subject.county_id,
        township_id=subject.township_id,
        after={"upstream_id": data["upstream_id"], "name": subject.name_masked},
    )
    return Pushed(subject.ref, created=True)


def _household(session: Session, actor: User, data: dict[str, Any]) -> CreditSubject:
    if data.get("household_ref"):
        subject = get_by_ref(session, data["household_ref"])
    else:
        link = session.scalar(
            select(UpstreamLink).where(
                UpstreamLink.county_id == actor.county_id,
                UpstreamLink.kind == "household",
                UpstreamLink.upstream_id == data.get("household_upstream_id"),
            )
        )
        if link is None:
            raise NotFound("holder_not_found")
        subject = get_by_ref(session, link.local_id)
    if subject.county_id != actor.county_id:
        raise NotFound("holder_not_found")
    return subject


def push_rating(
    session: Session, actor: User, data: dict[str, Any], today: date | None = None
) -> Pushed:
    """A rating made upstream: with stage `notice` it is posted in the village like a local
    one; with `effective` (the platform ran the notice) it takes effect at once, money and all."""
    day = today or business_date()
    req_hash = _hash(data)
    found = _replay(session, actor.county_id, "rating", data["upstream_id"], req_hash)
    if found is not None:
        return found
    subject = _household(session, actor, data)
    score = data.get("score")
    if score is None:
        level = ratings.scheme_of(session, subject).level(data.get("level_code"))
        if level is None:
            raise ValidationFailed(
                details={"fields": {"level_code": ["not a level of the scheme"]}}
            )
        score = level.score_threshold
    rating = ratings.draft_rating(
        session,
        None,
        subject,
        ratings.ScoreInput(score=score),
        origin="upstream",
        period_start=data.get("period_start"),
        today=day,
    )
    rating.created_by = ratings.actor_label(actor)
    ratings.post_notice(session, None, rating, today=day)
    if data.get("stage") == "effective":
        ratings.activate(session, [rating], day, actor)
    _link(session, actor.county_id, "rating", data["upstream_id"], str(rating.id), req_hash)
    audit.record(
        session,
        actor=actor,
        action="upstream.rating",
        object_type="rating",
        object_id=rating.id,
        county_id=rating.county_id,
        township_id=rating.township_id,
        after={
            "upstream_id": data["upstream_id"],
            "level": rating.level_code,
            "status": rating.status,
        },
    )
    return Pushed(str(rating.id), created=True)


def get_pushed_rating(session: Session, local_id: str) -> Rating:
    rating = session.get(Rating, int(local_id))
    assert rating is not None
    return rating
