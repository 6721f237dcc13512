"""`flask --app wsgi verify` (and `flask --app wsgi ledger verify|expire-holds`)."""

from __future__ import annotations

import time

import click
from flask import Flask
from flask.cli import with_appcontext

from mall.extensions import db


def _verify(township: int | None) -> None:
    from mall.ledger.verify import verify_ledger

    started = time.perf_counter()
    engine = db.engine
    options = {"isolation_level": "REPEATABLE READ"} if engine.dialect.name == "postgresql" else {}
    # One snapshot for every check: concurrent postings cannot make a sound ledger look wrong.
    with engine.connect().execution_options(**options) as conn:
        report = verify_ledger(conn, township)
    elapsed = time.perf_counter() - started
    click.echo(
        f"ledger: {report.entries} entries, {report.postings} postings, "
        f"{report.accounts} accounts checked in {elapsed:.2f}s"
    )
    if report.ok:
        click.echo("ledger: OK")
        return
    click.echo(f"ledger: FIRST DISCREPANCY: {report.first}", err=True)
    for problem in report.discrepancies[1:]:
        click.echo(f"ledger: also: {problem}", err=True)
    raise SystemExit(1)


@click.command("verify")
@click.option("--township", type=int, default=None, help="Only this township's books.")
@with_appcontext
def verify_command(township: int | None) -> None:
    """Recompute every balance from the postings, check zero-sum and the hash chains.
    Exits 1 and names the first discrepancy if anything disagrees."""
    _verify(township)


@click.group("ledger")
def ledger_group() -> None:
    """The ledger's maintenance commands."""


ledger_group.add_command(verify_command)


@ledger_group.command("expire-holds")
@click.option("--limit", type=int, default=500)
@with_appcontext
def expire_holds_command(limit: int) -> None:
    """Expire open holds past their deadline (run from a timer)."""
    from mall.ledger.holds import expire_holds

    session = db.session()
    count = expire_holds(session, limit=limit)
    session.commit()
    click.echo(f"expired {count} hold(s)")


def register(app: Flask) -> None:
    app.cli.add_command(verify_command)
    app.cli.add_command(ledger_group)
