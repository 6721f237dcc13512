"""The card revocation list: the serials of revoked integrity cards, for offline terminals.

A card code has no expiry and a till offline cannot ask whether its card was reported lost, so
terminals keep this list (POS API `GET /pos/v1/card-revocations`, docs/pos-api.md section 6).
Every revocation (lost, reissued) raises the list's version by one and stamps the card with
it: version N names exactly the cards whose `revocation_version` is at most N. The single row
of `card_revocation_list` is locked by each revocation until it commits, so versions become
visible in order: once version N can be read, every card up to N can be read too.

An offline record is judged against what its terminal had of this list (mall.payments.offline).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session

from mall.codes.models import CardRevocationList, IntegrityCard
from mall.db import insert_for

MAX_PAGE = 5000

_list: Table = CardRevocationList.__table__  # type: ignore[assignment]


def next_version(session: Session, now: datetime) -> int:
    """The version of the list that names a card being revoked now: the current one plus
    one. Locks the list's row until the transaction ends (revocations are rare)."""
    bump = (
        update(_list)
        .where(_list.c.id == 1)
        .values(version=_list.c.version + 1, updated_at=now)
        .returning(_list.c.version)
    )
    version = session.execute(bump).scalar()
    if version is None:  # a database built without the migration's row
        session.execute(
            insert_for(session, _list)
            .values(id=1, version=0, updated_at=now)
            .on_conflict_do_nothing()
        )
        version = session.execute(bump).scalar_one()
    return int(version)


def current_version(session: Session) -> int:
    """The version of the list as committed now (0: no card was ever revoked)."""
    return int(session.scalar(select(_list.c.version).where(_list.c.id == 1)) or 0)


@dataclass(frozen=True)
class RevocationPage:
    """The cards revoked after `since_version` up to `version`; `more` when the list goes on
    past `version` (ask again with `since_version=version`)."""

    since_version: int
    version: int
    more: bool
    cards: list[dict[str, Any]]


def revoked_since(session: Session, since_version: int, limit: int = MAX_PAGE) -> RevocationPage:
    """The cards revoked after `since_version`, oldest first, at most `limit` of them."""
    limit = max(1, min(limit, MAX_PAGE))
    since_version = max(0, since_version)
    # The version first: every card up to it is committed already (see the module's doc).
    version = current_version(session)
    rows = session.execute(
        select(IntegrityCard.serial, IntegrityCard.revocation_version)
        .where(
            IntegrityCard.revocation_version > since_version,
            IntegrityCard.revocation_version <= version,
        )
        .order_by(IntegrityCard.revocation_version)
        .limit(limit + 1)
    ).all()
    more = len(rows) > limit
    rows = rows[:limit]
    if more:
        version = int(rows[-1].revocation_version)
    return RevocationPage(
        since_version=since_version,
        version=version,
        more=more,
        # The serial and its version only: a till needs no more (not even when it was lost).
        cards=[{"serial": r.serial, "version": int(r.revocation_version)} for r in rows],
    )
