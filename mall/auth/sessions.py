"""Ending every login of a household at once: the one rule behind a PIN change, an admin PIN
reset, a lost card, a freeze or revocation, and a logout.

A household's logins are its API refresh families (rows of `refresh_tokens`), the 15-minute
access tokens issued from them, and its /m/ page sessions (signed cookies). Each carries the
household's session generation (`credit_subjects.session_gen`: the `gen` claim of both tokens,
the `farmer_gen` key of the cookie) from the moment it was issued, and is refused as soon as the
column has moved on: `mall.auth.context.farmer_from_token` and
`mall.farmer.pages.farmer_from_session` compare it with the household row they load for every
request anyway, and `mall.auth.services.refresh` before it rotates. So raising the column ends
everything, access tokens included, at no cost per request: no deny-list, no extra query.

The refresh rows are revoked as well, so the table says what the tokens can do. A login racing
the change is caught by the generation: one that read the household before the change committed
carries the old value and is refused at its first use (tests/auth/test_concurrency.py).

The rule lives here only: the services that cause it (mall.codes.services for PINs and lost
cards, mall.subjects.services for a status, mall.ratings.services for a revoked rating,
mall.auth.services for logout) call `end_household_sessions`. The party making the change may be
given a new login afterwards (a farmer changing their own PIN keeps their device logged in).
"""

from __future__ import annotations

import structlog
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mall.auth.models import RefreshToken
from mall.clock import utcnow
from mall.subjects.models import CreditSubject

log = structlog.get_logger(__name__)

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
