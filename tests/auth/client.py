"""A test client that starts every request with a fresh Flask-Babel cache.

The shared `session` fixture keeps one app context pushed for the whole test, and Flask
reuses it for every request the client makes, so `g` (where Flask-Babel caches the locale)
outlives a request. Production has a fresh app context per request; this client gets the
same effect, so one test can switch languages between requests.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, g
from flask.testing import FlaskClient
from werkzeug.test import TestResponse


class FreshRequestClient(FlaskClient):
    def open(self, *args: Any, **kwargs: Any) -> TestResponse:
        if g:
            # Everything a request leaves in `g`: Flask-Babel's locale, the signed CSRF
            # token of Flask-WTF, g.user / g.subject of our guards.
            vars(g._get_current_object()).clear()
        return super().open(*args, **kwargs)


def fresh_client(app: Flask) -> FreshRequestClient:
    return FreshRequestClient(app, app.response_class, use_cookies=True)
