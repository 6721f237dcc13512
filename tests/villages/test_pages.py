"""Admin pages: entities, credit-village stages with the plaque, assessment scoring to payout."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from mall.entities.services import ensure_village_subjects
from mall.villages import assessment, workflow
from tests.admin.pages_helpers import build_world, login_as, post
from tests.auth.client import FreshRequestClient
from tests.entities.test_services import USCC
from tests.factories import make_user


def test_pages_render_and_act(client: FreshRequestClient, session: Session) -> None:
    w = build_world(session)
    for v in w.c.villages:
        ensure_village_subjects(session, v)
    county2 = make_user(session, "county_admin", w.c.county)
    town2 = make_user(session, "township_admin", w.town)
    session.commit()
    login_as(client, w.town_admin)
    for path in ("/admin/entities", "/admin/credit-villages", "/admin/assessments"):
        resp = client.get(path)
        assert resp.status_code == 200, path
    resp = post(
        client,
        "/admin/entities/businesses",
        {
            "village_id": w.c.villages[0].id,
            "name": "建华家庭农场",
            "uscc": USCC,
            "business_type": "family_farm",
            "legal_rep": "张建华",
        },
    )
    assert resp.status_code == 302
    html = client.get("/admin/entities?kind=business").get_data(as_text=True)
    assert "建华家庭农场" in html
    assert USCC not in html
    assert "张*华" in html
    resp = post(client, "/admin/credit-villages", {"village_id": w.c.villages[0].id, "grade": "AA"})
    app_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    post(
        client, f"/admin/credit-villages/{app_id}/town_review", {"approve": "1", "opinion": "同意"}
    )
    app = workflow.get_application(session, app_id)
    assert app.status == "town_passed"
    login_as(client, w.county_admin)
    post(
        client,
        f"/admin/credit-villages/{app_id}/county_review",
        {"approve": "1", "opinion": "合格"},
    )
    post(client, f"/admin/credit-villages/{app_id}/notice")
    session.refresh(app)
    assert app.status == "notice"
    # Move the notice into the past, then the second county admin decides.
    app.notice_from = app.notice_from - timedelta(days=10)  # type: ignore[operator]
    app.notice_until = app.notice_until - timedelta(days=10)  # type: ignore[operator]
    session.commit()
    resp = post(
        client, f"/admin/credit-villages/{app_id}/decide", {"approve": "1", "decision_no": "1"}
    )
    session.refresh(app)
    assert app.status == "notice"  # the re-reviewer may not decide
    login_as(client, county2)
    post(client, f"/admin/credit-villages/{app_id}/decide", {"approve": "1", "decision_no": "1"})
    session.refresh(app)
    assert app.status == "awarded"
    png = client.get(f"/admin/credit-villages/{app_id}/plaque.png")
    assert png.status_code == 200
    assert png.data[:4] == b"\x89PNG"
    # Assessment: plan by the county, score by one township admin, approve and pay by another.
    post(
        client,
        "/admin/assessments/plans",
        {"period": "2025", "name": "年度考评", "fund": "township"},
    )
    plan = assessment.list_plans(session, w.county_admin)[0]
    login_as(client, w.town_admin)
    marks = {
        f"{ind['code']}.{it['code']}": str(it["max"])
        for ind in plan.indicators
        for it in ind["items"]
    }
    post(
        client, f"/admin/assessments/{plan.id}/scores", {"village_id": w.c.villages[0].id, **marks}
    )
    a = assessment.list_assessments(session, w.town_admin, plan.id)[0]
    assert a.reward_fen == 1_000_000
    post(client, f"/admin/assessments/scores/{a.id}/approve")
    session.refresh(a)
    assert a.status == "scored"  # the scorer cannot approve
    login_as(client, town2)
    post(client, f"/admin/assessments/scores/{a.id}/approve")
    post(client, f"/admin/assessments/scores/{a.id}/pay")
    session.refresh(a)
    assert a.status == "paid"
    assert "已发放" in client.get(f"/admin/assessments?plan={plan.id}").get_data(as_text=True)
