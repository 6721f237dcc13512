from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from tests.auth.client import FreshRequestClient, fresh_client


@pytest.fixture
def client(app: Flask, session: Session) -> FreshRequestClient:
    return fresh_client(app)
