from __future__ import annotations

import click
from flask.cli import with_appcontext


@click.command("demo")
@click.option("--manifest", type=click.Path(dir_okay=False), default=None)
@with_appcontext
def demo_command(manifest: str | None) -> None:
    """Fill an empty database with a believable demo county."""
    from mall.demo.builder import build_demo

    build_demo(manifest)
