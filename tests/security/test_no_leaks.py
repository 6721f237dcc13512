"""Personal data never reaches a log line, and secrets never reach a response.

A full scenario runs through the real gunicorn server (staff and farmer logins, a reveal,
enrolment, scans, card and dynamic-code payments, a refund, statements, a wrong PIN, an
upload of bad input); every response body is kept. Then the server's whole log is searched
for every household's phone, ID number and name, and the responses for secret material.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from mall.security.crypto import Sealer
from mall.subjects.models import CreditSubject, SubjectMember
from pos_adapter.client import PosClient, PosError
from tests.live import LiveServer

pytestmark = pytest.mark.e2e


def _personal_data(live: LiveServer) -> list[str]:
    """Every demo person's phone, ID number and (3+ character) name, unsealed here."""
    from mall.config import Config

    config = Config(dict(os.environ))
    sealer = Sealer(config.ENCRYPTION_KEY, config.BLIND_INDEX_KEY)
    engine = create_engine(live.database_url.replace("postgresql://", "postgresql+psycopg://"))
    values: set[str] = set()
    with Session(engine) as s:
        for row in s.scalars(select(CreditSubject)):
            for field in ("id_number", "phone"):
                sealed = getattr(row, f"{field}_enc")
                if sealed:
                    values.add(sealer.open(sealed, field))
            values.add(sealer.open(row.name_enc, "name"))
        for member in s.scalars(select(SubjectMember)):
            values.add(sealer.open(member.name_enc, "name"))
    engine.dispose()
    # Two-character names also spell ordinary words; the longer ones are unambiguous.
    return sorted(v for v in values if len(v) >= 3)


class _Recorder:
    def __init__(self) -> None:
        self.bodies: list[tuple[str, str]] = []

    def __call__(self, resp: requests.Response, *_: Any, **__: Any) -> None:
        self.bodies.append((resp.request.method + " " + resp.request.path_url, resp.text))


def _scenario(live: LiveServer, rec: _Recorder) -> dict[str, str]:
    m = live.manifest
    web = requests.Session()
    web.hooks["response"].append(rec)
    admin = next(a for a in m["admins"] if a["role"] == "township_admin")
    token = web.post(
        live.url + "/api/v1/auth/admin/login",
        timeout=10,
        json={"username": admin["username"], "password": admin["password"]},
    ).json()["access_token"]
    staff = {"Authorization": f"Bearer {token}"}
    households = web.get(
        live.url + "/api/v1/admin/households", headers=staff, timeout=10, params={"limit": 5}
    ).json()["items"]
    ref = households[0]["ref"]
    web.get(live.url + f"/api/v1/admin/households/{ref}", headers=staff, timeout=10)
    web.post(
        live.url + f"/api/v1/admin/households/{ref}/reveal",
        headers=staff,
        timeout=10,
        json={"field": "phone", "reason": "安全测试"},
    )
    village = next(
        r["id"]
        for r in web.get(live.url + "/api/v1/admin/regions", headers=staff, timeout=10).json()[
            "items"
        ]
        if r["kind"] == "village"
    )
    web.post(
        live.url + "/api/v1/admin/households",
        headers=staff,
        timeout=10,
        json={
            "village_id": village,
            "head_name": "欧阳明华",
            "phone": "13912340000",
            "id_number": "520221198802021234",
        },
    )
    web.post(
        live.url + "/api/v1/admin/households",
        headers=staff,
        timeout=10,
        json={"village_id": village, "head_name": "欧阳明华", "phone": "13912340000"},
    )  # duplicate
    web.get(
        live.url + "/api/v1/admin/households",
        headers=staff,
        timeout=10,
        params={"q": "13912340000"},
    )

    holder = next(h for h in m["households"] if h.get("card_code") and h["level"])
    farmer = web.post(
        live.url + "/api/v1/auth/farmer/login",
        timeout=10,
        json={"phone": holder["phone"], "pin": holder["pin"]},
    ).json()
    web.post(
        live.url + "/api/v1/auth/farmer/login",
        timeout=10,
        json={"phone": "13912349999", "pin": "000000"},
    )
    me = {"Authorization": f"Bearer {farmer['access_token']}"}
    web.get(live.url + "/api/v1/me", headers=me, timeout=10)
    dynamic = web.get(live.url + "/api/v1/me/code", headers=me, timeout=10).json()["code"]
    web.get(live.url + "/api/v1/me/transactions", headers=me, timeout=10)

    t = next(t for t in m["terminals"] if t["partner_category"] == "supermarket")
    till = PosClient(live.url, t["terminal_id"], t["secret"])
    till.http.hooks["response"].append(rec)
    till.scan(holder["card_code"])
    with pytest.raises(PosError):
        till.pay(holder["card_code"], 2_000, pin="999999")
    paid = till.pay(holder["card_code"], 2_000, pin=holder["pin"], idempotency_key=uuid.uuid4().hex)
    till.refund(paid["payment_id"], amount_fen=500)
    till.pay(dynamic, 1_000, idempotency_key=uuid.uuid4().hex)
    till.statement(paid["business_date"])
    till.statement(paid["business_date"], csv=True)
    return {"terminal_secret": t["secret"], "admin_password": admin["password"]}


def test_no_personal_data_in_logs_and_no_secrets_in_responses(live_server: LiveServer) -> None:
    rec = _Recorder()
    secrets_used = _scenario(live_server, rec)
    assert len(rec.bodies) >= 20

    log = live_server.log_text()
    leaked = [
        v for v in [*_personal_data(live_server), "13912340000", "520221198802021234"] if v in log
    ]
    assert leaked == [], f"personal data in the server log: {leaked[:5]}"

    forbidden = {
        "terminal secret": secrets_used["terminal_secret"],
        "staff password": secrets_used["admin_password"],
        "password or PIN hash": "$argon2",
        "sealed field": '"v1:',
    }
    for method_path, body in rec.bodies:
        for what, needle in forbidden.items():
            assert needle not in body, f"{what} in the response to {method_path}"
