"""`flask --app wsgi codes ...`: key rotation and housekeeping of credit codes."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from mall.codes import keys
from mall.codes.services import prune_used_codes
from mall.extensions import db


@click.group("codes")
def codes_command() -> None:
    """Credit-code keys and housekeeping."""


@codes_command.command("rotate-key")
@click.option(
    "--activate-in",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="Seconds until the new key signs; publish it first so offline terminals fetch it "
    "(more than the 300 s JWKS cache). 0 switches at once (after a compromise).",
)
@with_appcontext
def rotate_key_command(activate_in: int) -> None:
    """Create a new signing key; the old one keeps verifying its codes for a while."""
    session = db.session()
    new = keys.rotate_key(session, activate_in=activate_in)
    session.commit()
    click.echo(f"new signing key {new.kid}, signs from {new.activated_at.isoformat()}")


@codes_command.command("prune-used")
@with_appcontext
def prune_used_command() -> None:
    """Delete spent dynamic codes that have expired."""
    session = db.session()
    deleted = prune_used_codes(session)
    session.commit()
    click.echo(f"deleted {deleted} spent codes")
