"""Admin page test data and helpers: a county with two townships, staff of every role, a few
households, a partner, earning rules; log in by session; post with the session's CSRF token."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from mall.auth.services import session_version
from mall.clock import utcnow
from mall.http.auth import SESSION_LOGIN_AT, SESSION_USER_ID, SESSION_VERSION
from mall.partners.models import Partner
from mall.points.rules import create_rule
from mall.regions.models import Region
from mall.subjects.models import CreditSubject
from mall.users.models import User
from tests.factories import County, make_county, make_household, make_partner, make_user


@dataclass
class World:
    c: County
    county_admin: User
    auditor: User
    town_admin: User
    town2_admin: User
    clerk: User
    clerk2: User  # a clerk of the second village of township 1
    cashier: User
    partner: Partner
    partner2: Partner  # township 2
    households: list[CreditSubject]  # township 1, village 0 (two) and village 1 (one)
    household2: CreditSubject  # township 2

    @property
    def town(self) -> Region:
        return self.c.townships[0]


def build_world(session: Session) -> World:
    c = make_county(session)
    t1, t2 = c.townships
    partner = make_partner(session, t1, name="一镇信用超市")
    partner2 = make_partner(session, t2, name="二镇信用超市")
    w = World(
        c=c,
        county_admin=make_user(session, "county_admin", c.county),
        auditor=make_user(session, "auditor", c.county),
        town_admin=make_user(session, "township_admin", t1),
        town2_admin=make_user(session, "township_admin", t2),
        clerk=make_user(session, "village_clerk", c.villages[0]),
        clerk2=make_user(session, "village_clerk", c.villages[1]),
        cashier=make_user(session, "cashier", t1, partner=partner),
        partner=partner,
        partner2=partner2,
        households=[
            make_household(session, c.villages[0], name="张建华"),
            make_household(session, c.villages[0], name="李秀英"),
            make_household(session, c.villages[1], name="王小明"),
        ],
        household2=make_household(session, c.villages[2], name="赵大山"),
    )
    create_rule(session, None, c.county, code="volunteer", name="志愿服务", points=5)
    session.commit()
    return w


def login_as(client: FlaskClient, user: User) -> None:
    with client.session_transaction() as sess:
        sess[SESSION_USER_ID] = user.id
        sess[SESSION_VERSION] = session_version(user)
        sess[SESSION_LOGIN_AT] = int(utcnow().timestamp())


def csrf(client: FlaskClient, path: str = "/admin/") -> str:
    html = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html)
    assert match, html[:2000]
    return match.group(1)


def post(
    client: FlaskClient, path: str, data: dict[str, Any] | None = None, **kw: Any
) -> TestResponse:
    body = {"csrf_token": csrf(client), **(data or {})}
    return client.post(path, data=body, **kw)


def text(resp: TestResponse) -> str:
    return resp.get_data(as_text=True)
