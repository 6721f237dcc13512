"""Small helpers for API tests."""

from __future__ import annotations

from mall.auth.services import issue_staff_token
from mall.users.models import User


def staff_headers(user: User, lang: str | None = None) -> dict[str, str]:
    token, _ = issue_staff_token(user)
    headers = {"Authorization": f"Bearer {token}"}
    if lang:
        headers["Accept-Language"] = lang
    return headers
