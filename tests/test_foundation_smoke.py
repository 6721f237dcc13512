from flask.testing import FlaskClient


def test_healthz(client: FlaskClient) -> None:
    assert client.get("/healthz").json == {"status": "ok"}


def test_readyz_at_head(client: FlaskClient) -> None:
    resp = client.get("/readyz")
    assert resp.status_code == 200, resp.json


def test_openapi(client: FlaskClient) -> None:
    assert client.get("/openapi.json").json["info"]["title"]
