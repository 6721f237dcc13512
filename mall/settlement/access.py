"""Who may see and settle which partner: one rule for every settlement endpoint.

County roles see their county's partners, township roles their township's; a cashier sees
only their own partner (a partner uploads and reads its own records). Out of scope is 404.
"""

from __future__ import annotations

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute

from mall.users.models import User

READERS = ("county_admin", "township_admin", "auditor", "cashier")
SETTLERS = ("county_admin", "township_admin")
UPLOADERS = ("county_admin", "township_admin", "cashier")


MAX_BIGINT = 2**63 - 1


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
