"""The integrity-money discount rate of a household at a partner.

The rate per level comes from the household's rating scheme (mall.ratings); this module adds
the partner's side (a partner that does not accept integrity money gives 0). The default
five-star table below is kept as documentation of the default scheme and for level labels.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from mall.clock import business_date
from mall.partners.models import Partner
from mall.ratings import services as ratings
from mall.subjects.models import CreditSubject

# Level rank 1..5 (一星级..五星级) -> 2%..10% of the sale, in basis points.
DEFAULT_RATE_BP_BY_RANK = {1: 200, 2: 400, 3: 600, 4: 800, 5: 1000}


def effective_rank(subject: CreditSubject, on: date | None = None) -> int | None:
    """The household's level rank while its rating is valid, else None (unrated)."""
    if subject.level_rank is None or subject.level_code is None:
        return None
    if subject.level_valid_until is not None and subject.level_valid_until < (
        on or business_date()
    ):
        return None
    return subject.level_rank


def discount_rate_bp(
    session: Session, subject: CreditSubject, partner: Partner, on: date | None = None
) -> int:
    """Basis points of a sale payable from integrity money under the household's scheme; 0
    when unrated or when the partner does not accept integrity money. `on`: the business
    date of the sale (an offline sale's, uploaded later), today by default."""
    if not partner.accepts_integrity:
        return 0
    return ratings.discount_rate_bp(session, subject, on)


def level_label(code: str | None, rank: int | None) -> str | None:
    """What the till shows: 三星级 for the default scheme's "3", the code itself otherwise."""
    if code is None:
        return None
    names = {"1": "一星级", "2": "二星级", "3": "三星级", "4": "四星级", "5": "五星级"}
    return names.get(code, code)


def integrity_discount_fen(amount_fen: int, rate_bp: int, available_fen: int) -> int:
    """min(floor(amount * rate / 10000), what the wallet holds): integers only."""
    return max(0, min(amount_fen * rate_bp // 10000, available_fen))
