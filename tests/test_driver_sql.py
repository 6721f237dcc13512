"""mall.driver_sql: Core statements run on the driver where SQLAlchemy would add nothing, and
through SQLAlchemy with the same answers everywhere else."""

from __future__ import annotations

import pytest
import sqlalchemy.exc
from flask import Flask
from sqlalchemy import Integer, bindparam, event, select, update
from sqlalchemy.orm import Session

from mall.driver_sql import DriverStatement, EntityLoader, MappedInsert
from mall.extensions import db
from mall.regions.models import Region
from mall.regions.services import create_region
from pos_adapter import idempotency
from tests.conftest import is_postgres

_regions = Region.__table__

_BY_CODE = DriverStatement(
    lambda _d: select(_regions.c.id, _regions.c.name).where(_regions.c.code == bindparam("code"))
)
_RENAME = DriverStatement(
    lambda _d: (
        update(_regions)
        .where(_regions.c.code == bindparam("b_code"))
        .values(name=bindparam("b_name"))
    )
)


def _statements_seen_by_sqlalchemy(session: Session) -> list[str]:
    seen: list[str] = []
    event.listen(session.connection(), "before_cursor_execute", lambda *a: seen.append(a[2]))
    return seen


def test_rows_first_and_rowcount_answer_alike_on_every_backend(session: Session) -> None:
    county = create_region(session, kind="county", code="C-DRV", name="试验县")
    session.flush()
    assert _BY_CODE.rows(session, {"code": "C-DRV"}) == [(county.id, "试验县")]
    assert _BY_CODE.first(session, {"code": "nobody"}) is None
    assert _RENAME.rowcount(session, {"b_code": "C-DRV", "b_name": "改名县"}) == 1
    assert _RENAME.rowcount(session, {"b_code": "nobody", "b_name": "x"}) == 0
    # The same transaction: the change is there for the session, and rolls back with it.
    session.expire(county)
    assert county.name == "改名县"


@pytest.mark.postgres_only
def test_on_postgresql_plain_statements_bypass_sqlalchemy(session: Session) -> None:
    dialect = session.get_bind().dialect
    assert _BY_CODE.runs_on_driver(dialect)
    # The POS hot path: the idempotency claim and its stored answer, the holder read, the
    # dynamic code spent, the payment row.
    from mall.codes.services import _HOLDER_BY_REF, _HOLDER_SPENDING_CODE, _SPEND_CODE
    from mall.ledger.accounts import _SALE_ACCOUNTS, _SALE_ACCOUNTS_LOCKED
    from mall.payments.services import _INSERT_PAYMENT
    from pos_adapter.auth import _TERMINAL_BY_CODE

    hot_path = (
        idempotency._CLAIM,
        idempotency._STORE,
        _TERMINAL_BY_CODE,
        _HOLDER_BY_REF,
        _HOLDER_SPENDING_CODE,
        _SPEND_CODE,
        _SALE_ACCOUNTS,
        _SALE_ACCOUNTS_LOCKED,
        _INSERT_PAYMENT._statement,
    )
    for hot in hot_path:
        assert hot.runs_on_driver(dialect)
    seen = _statements_seen_by_sqlalchemy(session)
    _BY_CODE.rows(session, {"code": "x"})
    assert seen == []


_BY_ID = DriverStatement(
    lambda _d: select(_regions.c.name).where(_regions.c.id == bindparam("id", type_=Integer))
)


@pytest.mark.postgres_only
def test_driver_errors_arrive_as_sqlalchemy_errors(app: Flask) -> None:
    """So the app's handlers answer them (400, 503...) and a lost connection is invalidated
    instead of being rolled back at the end of the request."""
    with db.engine.connect() as conn, Session(bind=conn) as session:
        with pytest.raises(sqlalchemy.exc.DataError) as caught:
            _BY_ID.rows(session, {"id": 2**70})  # beyond INTEGER: the database refuses it
        assert caught.value.orig is not None


def test_statements_that_need_sqlalchemy_keep_it(session: Session) -> None:
    dialect = session.get_bind().dialect
    # JSON needs SQLAlchemy's serializer; an expanding IN is rendered per call.
    settings = DriverStatement(
        lambda _d: (
            update(_regions)
            .where(_regions.c.code == bindparam("b_code"))
            .values(settings=bindparam("b_settings", type_=_regions.c.settings.type))
        )
    )
    some = DriverStatement(
        lambda _d: select(_regions.c.id).where(
            _regions.c.code.in_(bindparam("codes", expanding=True))
        )
    )
    assert not settings.runs_on_driver(dialect)
    assert not some.runs_on_driver(dialect)
    create_region(session, kind="county", code="C-JSON", name="县")
    session.flush()
    seen = _statements_seen_by_sqlalchemy(session)
    assert settings.rowcount(session, {"b_code": "C-JSON", "b_settings": {"a": [1]}}) == 1
    assert len(some.rows(session, {"codes": ["C-JSON", "none"]})) == 1
    assert len(seen) == 2
    assert session.scalar(select(Region.settings).where(Region.code == "C-JSON")) == {"a": [1]}


def test_a_mapped_insert_leaves_a_clean_persistent_instance(session: Session) -> None:
    inserter = MappedInsert(Region)
    region = Region(kind="county", code="C-INS", name="插入县", settings={})
    inserter.insert(session, region)
    assert region.id is not None
    assert region in session
    assert not session.new
    assert not session.dirty
    assert region.parent_id is None  # unset, no default: NULL, known without a query
    seen = _statements_seen_by_sqlalchemy(session)
    assert (region.kind, region.code, region.township_id) == ("county", "C-INS", None)
    assert seen == []
    # It is the row: the identity map and the database agree.
    assert session.get(Region, region.id) is region
    assert db.session.scalar(select(Region.name).where(Region.id == region.id)) == "插入县"


def test_a_computed_default_must_be_set_first(session: Session) -> None:
    with pytest.raises(ValueError, match="settings"):
        MappedInsert(Region).insert(session, Region(kind="county", code="C-NO", name="县"))


_REGION_ROWS = EntityLoader(Region)
_REGION_BY_CODE = DriverStatement(
    lambda _d: select(*_REGION_ROWS.columns, _regions.c.code.label("again")).where(
        _regions.c.code == bindparam("code")
    )
)


def test_an_entity_loader_attaches_what_a_query_would(session: Session) -> None:
    county = create_region(session, kind="county", code="C-LOAD", name="读取县")
    session.commit()
    session.expunge_all()
    row = _REGION_BY_CODE.first(session, {"code": "C-LOAD"})
    assert row is not None
    seen = _statements_seen_by_sqlalchemy(session)
    region = _REGION_ROWS.attach(session, row)
    assert (region.id, region.name, region.settings, row[-1]) == (
        county.id,
        "读取县",
        county.settings,
        "C-LOAD",
    )
    assert region in session
    assert not session.dirty
    assert seen == []  # every column came with the row
    assert session.get(Region, county.id) is region
    # An instance the session already holds is the answer, unsaved changes and all.
    region.name = "未保存"
    again = _REGION_ROWS.attach(session, _REGION_BY_CODE.first(session, {"code": "C-LOAD"}))
    assert again is region
    assert again.name == "未保存"


def test_populate_existing_overwrites_what_the_session_held(session: Session) -> None:
    create_region(session, kind="county", code="C-POP", name="原名县")
    session.commit()
    region = session.scalars(select(Region).where(Region.code == "C-POP")).one()
    _RENAME.rowcount(session, {"b_code": "C-POP", "b_name": "新名县"})  # behind the ORM's back
    row = _REGION_BY_CODE.first(session, {"code": "C-POP"})
    assert _REGION_ROWS.attach(session, row).name == "原名县"  # as a plain ORM query
    assert _REGION_ROWS.attach(session, row, populate_existing=True) is region
    assert region.name == "新名县"
    assert not session.dirty


def test_pending_changes_are_flushed_first(session: Session) -> None:
    session.add(Region(kind="county", code="C-PEND", name="待写县", settings={}))
    assert session.new
    assert _BY_CODE.first(session, {"code": "C-PEND"}) is not None


def test_backend_switch_is_by_dialect(session: Session) -> None:
    assert _BY_CODE.runs_on_driver(session.get_bind().dialect) is is_postgres()


def test_a_mapped_insert_makes_its_instance_and_sets_known_relationships(
    session: Session,
) -> None:
    county = create_region(session, kind="county", code="C-NEW", name="新县")
    session.flush()
    inserter = MappedInsert(Region)
    town = inserter.new(kind="township", code="T-NEW", name="新镇", parent_id=county.id)
    town.settings = {}
    inserter.insert(session, town, loaded={"parent": county})
    assert town in session
    assert not session.new
    assert not session.dirty
    seen = _statements_seen_by_sqlalchemy(session)
    assert town.parent is county  # known, not loaded
    assert (town.kind, town.code, town.township_id) == ("township", "T-NEW", None)
    assert seen == []
    assert session.get(Region, town.id) is town
    assert db.session.scalar(select(Region.parent_id).where(Region.id == town.id)) == county.id
