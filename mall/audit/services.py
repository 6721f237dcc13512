"""Recording and reading the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import g, has_request_context, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from mall.audit.models import AuditEntry
from mall.users.models import User
from mall.users.scope import restrict


def record(
    session: Session,
    *,
    actor: User | None,
    action: str,
    object_type: str,
    object_id: object,
    county_id: int | None = None,
    township_id: int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    note: str = "",
) -> AuditEntry:
    """Append one entry in the caller's transaction: the action and its record commit together.

    `before`/`after` must hold masked or non-personal values only.
    """
    entry = AuditEntry(
        actor_user_id=actor.id if actor else None,
        actor_label=f"{actor.username} ({actor.role})" if actor else "system",
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        county_id=county_id if county_id is not None else (actor.county_id if actor else None),
        township_id=township_id,
        before=before,
        after=after,
        note=note[:500],
    )
    if has_request_context():
        entry.ip = (request.remote_addr or "")[:64] or None
        entry.request_id = g.get("request_id")
    session.add(entry)
    session.flush()
    return entry


def list_entries(
    session: Session,
    viewer: User,
    *,
    before_id: int | None = None,
    limit: int = 50,
    action: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    actor_user_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[AuditEntry]:
    """Newest first, keyset-paginated on id, within the viewer's region."""
    stmt = restrict(
        select(AuditEntry),
        viewer,
        county_col=AuditEntry.county_id,
        township_col=AuditEntry.township_id,
    )
    if before_id is not None:
        stmt = stmt.where(AuditEntry.id < before_id)
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    if object_type:
        stmt = stmt.where(AuditEntry.object_type == object_type)
    if object_id:
        stmt = stmt.where(AuditEntry.object_id == object_id)
    if actor_user_id is not None:
        stmt = stmt.where(AuditEntry.actor_user_id == actor_user_id)
    if since is not None:
        stmt = stmt.where(AuditEntry.at >= since)
    if until is not None:
        stmt = stmt.where(AuditEntry.at < until)
    return list(session.scalars(stmt.order_by(AuditEntry.id.desc()).limit(limit)))
