"""The integrity-money discount rate of a household at a partner.

TEMPORARY: the default five-star table until the rating-scheme service (issue 4, mall/ratings)
lands; then `discount_rate_bp` must ask the household's scheme instead. Callers use only this
function, so the switch is one place.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from mall.clock import business_date
from mall.partners.models import Partner
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


def discount_rate_bp(session: Session, subject: CreditSubject, partner: Partner) -> int:
    """Basis points of a sale payable from integrity money; 0 when unrated or when the
    partner does not accept integrity money. (`session` is for the scheme service.)"""
    if not partner.accepts_integrity:
        return 0
    rank = effective_rank(subject)
    if rank is None or rank < 1:
        return 0
    return DEFAULT_RATE_BP_BY_RANK.get(rank, DEFAULT_RATE_BP_BY_RANK[5])


def level_label(code: str | None, rank: int | None) -> str | None:
    """What the till shows: 三星级 for the default scheme's "3", the code itself otherwise."""
    if code is None:
        return None
    names = {"1": "一星级", "2": "二星级", "3": "三星级", "4": "四星级", "5": "五星级"}
    return names.get(code, code)


def integrity_discount_fen(amount_fen: int, rate_bp: int, available_fen: int) -> int:
    """min(floor(amount * rate / 10000), what the wallet holds): integers only."""
    return max(0, min(amount_fen * rate_bp // 10000, available_fen))
