"""Flask CLI commands: `flask --app wsgi demo`, `verify`, `jobs`..."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    from mall.codes.cli import codes_command
    from mall.demo.cli import demo_command
    from mall.ledger.cli import register as register_ledger

    app.cli.add_command(demo_command)
    app.cli.add_command(codes_command)
    register_ledger(app)
    from mall.jobs.cli import jobs_command

    app.cli.add_command(jobs_command)
