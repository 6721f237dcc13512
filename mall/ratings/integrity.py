"""Integrity money (诚信金) as ledger entries between household wallets and the township fund.

- A rating takes effect: the wallet is granted its level's amount for the period.
- A new rating replaces one of the same period (upgrade, downgrade, re-review, repair): the
  wallet moves by the difference; a lower amount claws back what is unspent, never more.
- A period ends: the unused balance expires back to the fund, unless the region's setting
  `integrity_money_carry_over` keeps it.
- A revocation claws back the whole available balance.

Entries are posted in bulk per township (mall.ledger.bulk), idempotent per rating and purpose.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from mall.ledger.accounts import system_account
from mall.ledger.bulk import Transfer, post_household_transfers
from mall.ledger.models import HOUSEHOLD_INTEGRITY, INTEGRITY_FUND
from mall.ratings.models import Rating
from mall.ratings.schemes import Scheme, scheme_for_kind
from mall.regions.models import Region
from mall.regions.services import effective_settings
from mall.subjects.models import CreditSubject

ALL_AVAILABLE = -(2**62)  # a debit clamped to whatever the wallet has available
SOURCE = "rating"


@dataclass
class Change:
    subject: CreditSubject
    rating: Rating  # the rating now effective
    previous: Rating | None  # the effective rating it replaces, if any


class _Regions:
    """Scheme and settings per village, looked up once per call."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._schemes: dict[tuple[int, str], Scheme] = {}
        self._carry: dict[int, bool] = {}

    def _village(self, village_id: int) -> Region:
        village = self.session.get(Region, village_id)
        assert village is not None
        return village

    def scheme(self, village_id: int, kind: str = "household") -> Scheme:
        if (village_id, kind) not in self._schemes:
            village = self._village(village_id)
            self._schemes[village_id, kind] = scheme_for_kind(self.session, village, kind)
        return self._schemes[village_id, kind]

    def holds_money(self, village_id: int, kind: str) -> bool:
        """Households hold integrity money; business entities where the region lets them
        use wallets (`business_entities_use_wallets`); collectives and villages never."""
        if kind == "household":
            return True
        settings = effective_settings(self.session, self._village(village_id))
        return kind == "business" and bool(settings.get("business_entities_use_wallets"))

    def carry_over(self, village_id: int) -> bool:
        if village_id not in self._carry:
            settings = effective_settings(self.session, self._village(village_id))
            self._carry[village_id] = bool(settings.get("integrity_money_carry_over"))
        return self._carry[village_id]


def level_money(regions: _Regions, rating: Rating, kind: str = "household") -> int:
    if not regions.holds_money(rating.village_id, kind):
        return 0
    level = regions.scheme(rating.village_id, kind).level(rating.level_code)
    return level.integrity_money_fen if level else 0


def _post(
    session: Session,
    township_id: int,
    transfers: list[Transfer],
    day: date,
    actor: str,
    reason: str,
    credit_kind: str = "integrity_granted",
    debit_kind: str = "integrity_clawed_back",
) -> dict[int, int]:
    if not transfers:
        return {}
    fund = system_account(session, township_id, INTEGRITY_FUND)
    result = post_household_transfers(
        session,
        township_id=township_id,
        wallet_kind=HOUSEHOLD_INTEGRITY,
        counter=fund,
        transfers=transfers,
        credit_kind=credit_kind,
        debit_kind=debit_kind,
        actor=actor,
        reason=reason,
        source_type=SOURCE,
        business_date=day,
    )
    return result.posted


def apply_changes(session: Session, changes: list[Change], day: date, *, actor: str) -> None:
    regions = _Regions(session)
    by_township: dict[int, list[Change]] = defaultdict(list)
    for change in changes:
        by_township[change.rating.township_id].append(change)
    for township_id, group in sorted(by_township.items()):
        # A previous rating of another period: its unused money ends first (or carries over).
        expiring = [
            Transfer(
                c.subject.id, ALL_AVAILABLE, str(c.previous.id), f"rating:{c.previous.id}:expire"
            )
            for c in group
            if c.previous is not None
            and c.previous.period_start != c.rating.period_start
            and not regions.carry_over(c.rating.village_id)
        ]
        _post(
            session, township_id, expiring, day, actor, "诚信金到期", debit_kind="integrity_expired"
        )
        transfers = []
        for c in group:
            same_period = (
                c.previous is not None and c.previous.period_start == c.rating.period_start
            )
            base = c.previous.granted_fen if same_period and c.previous else 0
            c.rating.granted_fen = base
            delta = level_money(regions, c.rating, c.subject.kind) - base
            if delta:
                transfers.append(
                    Transfer(c.subject.id, delta, str(c.rating.id), f"rating:{c.rating.id}:grant")
                )
        posted = _post(session, township_id, transfers, day, actor, "信用评级诚信金")
        for c in group:
            c.rating.granted_fen += posted.get(c.subject.id, 0)
    session.flush()


def expire_unused(
    session: Session, subjects: list[CreditSubject], ratings: list[Rating], day: date
) -> None:
    regions = _Regions(session)
    by_township: dict[int, list[Transfer]] = defaultdict(list)
    for subject, rating in zip(subjects, ratings, strict=True):
        if regions.carry_over(rating.village_id):
            continue
        by_township[rating.township_id].append(
            Transfer(subject.id, ALL_AVAILABLE, str(rating.id), f"rating:{rating.id}:expire")
        )
    for township_id, transfers in sorted(by_township.items()):
        _post(
            session,
            township_id,
            transfers,
            day,
            "system",
            "诚信金期满",
            debit_kind="integrity_expired",
        )


def claw_back(
    session: Session, subject: CreditSubject, rating: Rating, day: date, actor: str, reason: str
) -> int:
    posted = _post(
        session,
        rating.township_id,
        [Transfer(subject.id, ALL_AVAILABLE, str(rating.id), f"rating:{rating.id}:clawback")],
        day,
        actor,
        reason or "撤销评级,收回诚信金",
    )
    return -posted.get(subject.id, 0)
