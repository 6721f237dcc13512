"""Finding households for staff: exact search through blind indexes, filters, keyset pages."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from mall.security.crypto import sealer
from mall.subjects.models import CreditSubject
from mall.users.models import User
from mall.users.scope import restrict


@dataclass(frozen=True)
class SubjectFilter:
    q: str | None = None  # a ref, phone, ID number or full name: matched exactly
    village_id: int | None = None
    township_id: int | None = None
    status: str | None = None
    level_code: str | None = None
    kind: str = "household"


def search(
    session: Session,
    viewer: User,
    f: SubjectFilter,
    *,
    after_id: int | None = None,
    limit: int = 50,
) -> list[CreditSubject]:
    """Newest first; pass the last row's id as `after_id` for the next page."""
    stmt = restrict(
        select(CreditSubject).options(selectinload(CreditSubject.members)),
        viewer,
        county_col=CreditSubject.county_id,
        township_col=CreditSubject.township_id,
    ).where(CreditSubject.kind == f.kind)
    if f.q:
        q = f.q.strip()
        s = sealer()
        stmt = stmt.where(
            or_(
                CreditSubject.ref == q,
                CreditSubject.phone_bidx == s.blind_index(q, "phone"),
                CreditSubject.id_number_bidx == s.blind_index(q, "id_number"),
                CreditSubject.name_bidx == s.blind_index(q, "name"),
            )
        )
    if f.village_id is not None:
        stmt = stmt.where(CreditSubject.village_id == f.village_id)
    if f.township_id is not None:
        stmt = stmt.where(CreditSubject.township_id == f.township_id)
    if f.status:
        stmt = stmt.where(CreditSubject.status == f.status)
    if f.level_code:
        stmt = stmt.where(CreditSubject.level_code == f.level_code)
    if after_id is not None:
        stmt = stmt.where(CreditSubject.id < after_id)
    return list(session.scalars(stmt.order_by(CreditSubject.id.desc()).limit(limit)))
