"""Issue 19's weaker points and the forged log line, through gunicorn as they were found.

- A newline in the URL path wrote a forged line into gunicorn's access log.
- Request lines over 4 KB and oversized headers got gunicorn's HTML 414/431.
- Staff API answers (a revealed ID number) carried no Cache-Control: no-store.
- A payment of zero with no goods created an empty payment.
- The POS payments list refused the empty `cursor=` the contract writes.
"""

from __future__ import annotations

import json
import socket
import uuid
from urllib.parse import urlsplit

import pytest
import requests

from pos_adapter.client import PosClient, PosError
from tests.live import LiveServer

pytestmark = pytest.mark.e2e


def _till(live: LiveServer) -> PosClient:
    t = next(t for t in live.manifest["terminals"] if t["partner_category"] == "supermarket")
    return PosClient(live.url, t["terminal_id"], t["secret"], retries=0)


def _raw_get(live: LiveServer, target: str, extra_headers: str = "") -> tuple[int, dict, bytes]:
    """Send a request line exactly as written (requests would quote it) and read the answer."""
    parts = urlsplit(live.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(
            f"GET {target} HTTP/1.1\r\nHost: x\r\n{extra_headers}Connection: close\r\n\r\n".encode()
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def test_a_newline_in_the_path_cannot_forge_a_log_line(live_server: LiveServer) -> None:
    marker = uuid.uuid4().hex[:12]
    status, _, _ = _raw_get(live_server, f"/x{marker}%0a127.0.0.1%20GET%20/admin/users%20200")
    assert status == 404
    log = live_server.log_text()
    assert marker in log
    line = next(line for line in log.splitlines() if marker in line)
    assert "\\x0a127.0.0.1 GET /admin/users 200" in line
    assert not any(line.startswith("127.0.0.1 GET /admin/users") for line in log.splitlines())


def test_a_forged_request_id_is_replaced(live_server: LiveServer) -> None:
    resp = requests.get(
        live_server.url + "/healthz", headers={"X-Request-Id": "a b\tc"}, timeout=10
    )
    assert resp.headers["X-Request-Id"] != "a b\tc"
    ok = requests.get(live_server.url + "/healthz", headers={"X-Request-Id": "req-1.2"}, timeout=10)
    assert ok.headers["X-Request-Id"] == "req-1.2"


@pytest.mark.parametrize(
    ("target", "extra", "status", "code"),
    [
        ("/api/v1/me?" + "a" * 5000, "", 414, "uri_too_long"),
        ("/api/v1/me", "X-Big: " + "b" * 9000 + "\r\n", 431, "headers_too_large"),
        ("/api/v1/me", "".join(f"X-H{i}: v\r\n" for i in range(120)), 431, "headers_too_large"),
    ],
)
def test_gunicorn_refusals_use_the_json_envelope(
    live_server: LiveServer, target: str, extra: str, status: int, code: str
) -> None:
    got, headers, body = _raw_get(live_server, target, extra)
    assert got == status
    assert headers["Content-Type"] == "application/json"

    error = json.loads(body)["error"]
    assert error["code"] == code
    assert error["message"]


def _staff_token(live: LiveServer) -> str:
    admin = next(a for a in live.manifest["admins"] if a["role"] == "township_admin")
    login = requests.post(
        live.url + "/api/v1/auth/admin/login",
        json={"username": admin["username"], "password": admin["password"]},
        timeout=10,
    )
    assert login.status_code == 200, login.text
    assert login.headers["Cache-Control"] == "no-store"
    return str(login.json()["access_token"])


def test_staff_api_answers_are_never_cached(live_server: LiveServer) -> None:
    headers = {"Authorization": f"Bearer {_staff_token(live_server)}"}
    page = requests.get(
        live_server.url + "/api/v1/admin/households?limit=1", headers=headers, timeout=10
    )
    ref = page.json()["items"][0]["ref"]
    reveal = requests.post(
        f"{live_server.url}/api/v1/admin/households/{ref}/reveal",
        json={"field": "phone", "reason": "回访核实"},
        headers=headers,
        timeout=10,
    )
    assert reveal.status_code == 200, reveal.text
    assert reveal.headers["Cache-Control"] == "no-store"
    assert page.headers["Cache-Control"] == "no-store"
    keys = requests.get(live_server.url + "/pos/v1/keys", timeout=10)
    assert "max-age" in keys.headers["Cache-Control"]  # public keys stay cacheable


def test_a_sale_of_nothing_is_refused(live_server: LiveServer) -> None:
    till = _till(live_server)
    holder = next(h for h in live_server.manifest["households"] if h.get("card_code"))
    with pytest.raises(PosError) as exc:
        till.pay(holder["card_code"], 0, pin=holder["pin"])
    assert exc.value.status == 400
    assert exc.value.code == "validation_error"
    assert "amount_fen" in exc.value.details["fields"]


def test_the_payments_list_takes_an_empty_cursor(live_server: LiveServer) -> None:
    till = _till(live_server)
    day = "2026-01-01"
    first = till.request("GET", f"/pos/v1/payments?business_date={day}&cursor=")
    assert "items" in first
    with pytest.raises(PosError) as exc:
        till.request("GET", f"/pos/v1/payments?business_date={day}&cursor=zz")
    assert exc.value.code == "validation_error"
