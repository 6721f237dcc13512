"""The `credit-mall` console script (pyproject.toml): Flask's command line on this app."""

from __future__ import annotations


def main() -> None:
    """The `credit-mall` console script: Flask's command line on this app (`credit-mall jobs`,
    `credit-mall demo`, `credit-mall db upgrade heads`...), as `flask --app wsgi` is."""
    from flask.cli import FlaskGroup

    from mall.web.app import create_app

    FlaskGroup(create_app=lambda: create_app()).main()
