"""Running one piece of work in several threads at once, for the PostgreSQL concurrency tests
(tests/<domain>/test_concurrency.py): each thread has its own session and commits its own
transaction, as concurrent requests do."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Select
from sqlalchemy.orm import Session

from mall.errors import DomainError
from mall.extensions import db


def run_threads(n: int, work: Callable[[Session], object]) -> list[str]:
    """Start `n` workers together, each in its own session: "ok" when it committed, the
    refusal's code for a domain error, and the exception's class name for anything else (an
    IntegrityError here is what a request would have answered with a 500)."""
    barrier = threading.Barrier(n)

    def one(_: int) -> str:
        with Session(db.engine) as session:
            barrier.wait()
            try:
                work(session)
                session.commit()
                return "ok"
            except DomainError as exc:
                session.rollback()
                return exc.code
            except Exception as exc:  # reported, not raised: what a request would answer
                session.rollback()
                return type(exc).__name__

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(one, range(n)))


def count(stmt: Select[tuple[int]]) -> int:
    with Session(db.engine) as s:
        return int(s.scalar(stmt) or 0)
