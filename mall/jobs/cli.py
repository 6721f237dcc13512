"""`flask --app wsgi jobs [--today YYYY-MM-DD]`: run every scheduled step once."""

from __future__ import annotations

from datetime import date

import click
from flask.cli import with_appcontext

from mall.extensions import db


@click.command("jobs")
@click.option(
    "--today",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Business date to run as (default: today in Asia/Shanghai).",
)
@with_appcontext
def jobs_command(today: object) -> None:
    """Activate ratings whose notice ended, expire rating periods, points and holds."""
    from mall.jobs.services import run_jobs

    day: date | None = today.date() if today is not None else None  # type: ignore[attr-defined]
    report = run_jobs(db.engine, day, db.session())
    for name, count in report.done.items():
        click.echo(f"{name}: {count}")
    for name in report.skipped:
        click.echo(f"{name}: skipped (another runner has it)")
