"""mall.db helpers."""

from __future__ import annotations

import pytest
import sqlalchemy.exc
from flask import Flask
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from mall.db import add_unique, lock_row, unique_or
from mall.extensions import db
from mall.regions.models import Region
from mall.regions.services import create_region


def test_lock_row_keeps_changes_not_yet_flushed(session: Session) -> None:
    county = create_region(session, kind="county", code="C-LOCK", name="锁定县")
    session.flush()
    county.name = "改名县"  # pending: a bare refresh would put the old name back
    lock_row(session, county)
    assert county.name == "改名县"
    assert session.scalar(select(Region.name).where(Region.code == "C-LOCK")) == "改名县"


@pytest.mark.postgres_only
def test_lock_row_holds_the_row_until_the_transaction_ends(committed: Flask) -> None:
    session = db.session()
    county = create_region(session, kind="county", code="C-HELD", name="占用县")
    session.commit()
    lock_row(session, county)
    with Session(db.engine) as other:
        with pytest.raises(sqlalchemy.exc.OperationalError):  # lock_not_available
            other.execute(text("SELECT 1 FROM regions WHERE code = 'C-HELD' FOR UPDATE NOWAIT"))
        other.rollback()
    session.rollback()


def test_add_unique_answers_the_refusal_only_for_the_key_it_names(session: Session) -> None:
    create_region(session, kind="county", code="C-UNIQ", name="县")
    session.flush()
    refusal = LookupError("code taken")
    for only in (None, "uq_regions_code"):
        with pytest.raises(LookupError) as exc:
            add_unique(
                session,
                Region(kind="county", code="C-UNIQ", name="县", settings={}),
                refusal,
                only=only,
            )
        assert exc.value is refusal
    # Another key's refusal is not this one: raised as it is.
    with pytest.raises(sqlalchemy.exc.IntegrityError):
        add_unique(
            session,
            Region(kind="county", code="C-UNIQ", name="县", settings={}),
            refusal,
            only="uq_other",
        )
    # The savepoints undid only the refused rows.
    assert session.scalar(select(func.count()).where(Region.code == "C-UNIQ")) == 1


def test_unique_or_undoes_a_refused_change_and_keeps_the_transaction(session: Session) -> None:
    create_region(session, kind="county", code="C-TAKEN", name="甲县")
    mine = create_region(session, kind="county", code="C-MINE", name="乙县")
    session.flush()
    mine.name = "乙县改"  # pending before the block: flushed as it opens, outside it
    refusal = LookupError("code taken")
    with (
        pytest.raises(LookupError) as exc,
        unique_or(session, Region, refusal, only="uq_regions_code"),
    ):
        mine.code = "C-TAKEN"
    assert exc.value is refusal
    assert (mine.code, mine.name) == ("C-MINE", "乙县改")  # the refused change only, undone
    with unique_or(session, Region, refusal, only="uq_regions_code"):
        mine.code = "C-FREE"
    assert session.scalar(select(Region.code).where(Region.id == mine.id)) == "C-FREE"
