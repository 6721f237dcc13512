"""Who may see and settle which partner: one rule for every settlement endpoint.

County roles see their county's partners, township roles their township's; a cashier sees
only their own partner (a partner uploads and reads its own records). Out of scope is 404.
"""

from __future__ import annotations

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from mall.errors import NotFound
from mall.partners.models import Partner
from mall.users.models import User
from mall.users.scope import can_see

READERS = ("county_admin", "township_admin", "auditor", "cashier")
SETTLERS = ("county_admin", "township_admin")
UPLOADERS = ("county_admin", "township_admin", "cashier")


MAX_INT = 2**31 - 1  # partners.id is a 32-bit integer
MAX_BIGINT = 2**63 - 1


def visible_partner(session: Session, user: User, partner_id: int) -> Partner:
    partner = session.get(Partner, partner_id) if 0 < partner_id <= MAX_INT else None
    if partner is None:
        raise NotFound()
    if user.role == "cashier":
        if partner.id != user.partner_id:
            raise NotFound()
    elif not can_see(user, county_id=partner.county_id, township_id=partner.township_id):
        raise NotFound()
    return partner


def restrict_to_user(
    stmt: Select,
    user: User,
    *,
    partner_col: InstrumentedAttribute[int],
    county_col: InstrumentedAttribute[int],
    township_col: InstrumentedAttribute[int],
) -> Select:
    if user.role == "cashier":
        return stmt.where(partner_col == user.partner_id)
    if user.role in ("county_admin", "auditor"):
        return stmt.where(county_col == user.county_id)
    return stmt.where(township_col == user.township_id)
