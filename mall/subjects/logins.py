"""A household's logins (its refresh tokens) and ending every one of them at once: the one
rule behind a PIN change, an admin PIN reset, a lost card, a freeze or revocation, and a logout.

A household's logins are its API refresh families (rows of `refresh_tokens`), the 15-minute
access tokens issued from them, and its /m/ page sessions (signed cookies). Each carries the
household's session generation (`credit_subjects.session_gen`: the `gen` claim of both tokens,
the `farmer_gen` key of the cookie) from the moment it was issued, and is refused as soon as the
column has moved on: `mall.http.auth.farmer_from_token` and
`mall.farmer.pages.farmer_from_session` compare it with the household row they load for every
request anyway, and `mall.auth.services.refresh` before it rotates. So raising the column ends
everything, access tokens included, at no cost per request: no deny-list, no extra query.

The refresh rows are revoked as well, so the table says what the tokens can do. A login racing
the change is caught by the generation: one that read the household before the change committed
carries the old value and is refused at its first use (tests/auth/test_concurrency.py).

The rule lives here only, beside the household (mall.auth issues the logins; this package ends
them, so a status change needs nothing above it). The services that cause it call
`end_household_sessions`: mall.codes.services for PINs and lost cards, mall.subjects.services
for a status, mall.ratings.services for a revoked rating, mall.auth.services for logout. The
party making the change may be given a new login afterwards (a farmer changing their own PIN
keeps their device logged in).
"""

from __future__ import annotations

from datetime import datetime

import structlog
from sqlalchemy import CheckConstraint, DateTime, ForeignKey, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from mall.clock import utcnow
from mall.db import Base
from mall.models_common import BigId
from mall.subjects.models import CreditSubject

log = structlog.get_logger(__name__)


class RefreshToken(Base):
    """One issued refresh token, known by the `jti` of its signed JWT.

    We keep the jti, not a hash of the token: the token is an HS256 JWT, so a leaked row
    (or the whole table) cannot be turned into a usable token without JWT_SECRET, and the
    jti is a random 128-bit value that says nothing about its holder. Every rotation stays
    in the same `family_id`; presenting a retired token revokes the whole family.
    """

    __tablename__ = "refresh_tokens"
    __table_args__ = (CheckConstraint("expires_at > issued_at", name="expiry_after_issue"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    jti: Mapped[str] = mapped_column(String(32), unique=True)
    family_id: Mapped[str] = mapped_column(String(32), index=True)
    subject_id: Mapped[int] = mapped_column(
        ForeignKey("credit_subjects.id", ondelete="CASCADE"), index=True
    )
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Set when the token was exchanged for a new pair (rotation).
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    replaced_by: Mapped[str | None] = mapped_column(String(32))
    # Set by logout, by reuse detection, or when the household was revoked.
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    subject: Mapped[CreditSubject] = relationship()


# Why a household's logins were ended (logged; the audit record, where there is one, is the
# calling service's).
REASONS = frozenset(
    {"pin_changed", "pin_reset", "card_lost", "status_frozen", "status_revoked", "logout"}
)


def end_household_sessions(session: Session, subject: CreditSubject, reason: str) -> None:
    """End every API login and page session of `subject` issued before now. Flushes; the caller
    commits with the change that caused it (so both happen, or neither)."""
    if reason not in REASONS:
        raise ValueError(f"unknown reason {reason!r}")
    # In SQL, not read-modify-write: two concurrent ends both count. Until the caller commits,
    # a concurrent login reads the old value, and the login it issues is refused at first use.
    subject.session_gen = CreditSubject.session_gen + 1
    session.flush()  # the attribute is expired: the next read loads the new value
    # Rows another transaction holds (a refresh or logout in flight, which took its row first
    # and waits for the household's row, which this transaction may hold) are skipped rather
    # than waited for: waiting would deadlock. Whatever such a refresh issues carries the old
    # generation and is refused, and its family revoked, at its first use.
    live = (
        select(RefreshToken.id)
        .where(RefreshToken.subject_id == subject.id, RefreshToken.revoked_at.is_(None))
        .with_for_update(skip_locked=True)
    )
    revoked = session.execute(
        update(RefreshToken)
        .where(RefreshToken.id.in_(live.scalar_subquery()))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session="fetch")
    )
    log.info(
        "household_sessions_ended",
        subject_id=subject.id,
        reason=reason,
        refresh_tokens_revoked=int(getattr(revoked, "rowcount", 0) or 0),
    )


def generation_matches(subject: CreditSubject, claimed: object) -> bool:
    """Whether a login issued under generation `claimed` is still current for `subject`. A
    login without one (issued before generations existed, or forged) is not."""
    if not isinstance(claimed, int) or isinstance(claimed, bool):
        return False
    return claimed == subject.session_gen
