"""`run_jobs`: everything time moves forward, in one idempotent pass.

Each step runs in its own transaction. On PostgreSQL a step first takes a transaction-level
advisory lock (`pg_try_advisory_xact_lock`); a second runner that finds it taken skips the
step instead of waiting, and the rows themselves are taken FOR UPDATE SKIP LOCKED and moved
by conditional state changes, so nothing is done twice. On SQLite every write transaction is
serial (BEGIN IMMEDIATE). After a long gap every step simply finds more to do: ratings whose
notice ended long ago take effect and, if their period is also over, expire in the same run.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import structlog
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from mall.clock import business_date, utcnow

log = structlog.get_logger(__name__)


@dataclass
class JobReport:
    done: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def _lock_key(name: str) -> int:
    return zlib.crc32(f"mall.jobs.{name}".encode())


# The channels' own periodic tasks (the till's nonce and idempotency pruning), registered by
# the composition root: the domain knows no channel. Keyed by name, so registering again
# (every `create_app`) replaces rather than repeats.
_CHANNEL_STEPS: dict[str, Callable[[Session], object]] = {}


def register_step(name: str, step: Callable[[Session], object]) -> None:
    """Run `step(session)` after the domain's steps, in its own transaction, as `name`."""
    _CHANNEL_STEPS[name] = step


def _steps(today: date) -> list[tuple[str, Callable[[Session], object]]]:
    """Every periodic task of every domain, in order. Imported here, not at module level:
    the domains import each other's models, and the jobs module sits above them all."""
    from mall.auth.idempotency import prune_keys as prune_staff_keys
    from mall.auth.throttle import purge_stale
    from mall.codes.services import prune_used_codes
    from mall.ledger.holds import expire_holds
    from mall.payments.services import expire_authorizations
    from mall.points.expiry import expire_points
    from mall.ratings.services import activate_due, expire_periods
    from mall.reservations.services import expire_reservations
    from mall.settlement.closing import close_due_statements
    from mall.villages.workflow import expire_due as expire_credit_villages

    return [
        ("rating_periods", lambda s: expire_periods(s, today)),
        ("rating_activation", lambda s: activate_due(s, today)),
        # A rating activated late for a period already over ends in the same run.
        ("rating_periods_again", lambda s: expire_periods(s, today)),
        ("points_expiry", lambda s: expire_points(s, today)),
        ("credit_villages_expiry", lambda s: expire_credit_villages(s)),
        # Before the ledger's hold expiry: a reservation releases its own hold and its stock.
        ("reservations_expiry", lambda s: expire_reservations(s)),
        ("ledger_holds", lambda s: expire_holds(s)),
        ("payment_authorizations", lambda s: expire_authorizations(s)),
        ("settlement_closing", lambda s: close_due_statements(s, utcnow())),
        ("used_codes_pruning", lambda s: prune_used_codes(s)),
        ("login_throttle_pruning", lambda s: purge_stale(s)),
        ("staff_idempotency_pruning", lambda s: prune_staff_keys(s)),
        *_CHANNEL_STEPS.items(),
    ]


def run_jobs(
    engine: Engine, today: date | None = None, session: Session | None = None
) -> JobReport:
    """Run every step once. Each step gets its own session and transaction on `engine`,
    unless `session` is given (tests, or a caller that owns the transaction)."""
    day = today or business_date(utcnow())
    report = JobReport()
    for name, step in _steps(day):
        s = session or Session(engine, expire_on_commit=False)
        try:
            if s.get_bind().dialect.name == "postgresql":
                got = s.execute(
                    text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _lock_key(name)}
                ).scalar_one()
                if not got:
                    report.skipped.append(name)
                    s.rollback()
                    continue
            count = step(s)
            s.commit()
        except Exception:
            s.rollback()
            log.exception("job_failed", job=name)
            raise
        finally:
            if session is None:
                s.close()
        report.done[name] = count if isinstance(count, int) else 0
    return report
