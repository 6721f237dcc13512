"""Ratings page: an admin makes a rating effective once its notice has ended (scoped,
audited); before that, or for another township, it is refused."""

from __future__ import annotations

from datetime import timedelta

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from mall.audit.models import AuditEntry
from mall.clock import business_date
from mall.ratings import services
from tests.admin.pages_helpers import World, build_world, login_as, post, text
from tests.ratings.conftest import score_for


def test_activate_after_notice_only(client: FlaskClient, session: Session) -> None:
    w: World = build_world(session)
    household = w.households[0]
    today = business_date()
    late = services.draft_rating(session, w.clerk, household, score_for(91), today=today)
    services.post_notice(session, w.clerk, late, today=today)
    session.commit()
    login_as(client, w.town_admin)
    page = f"/admin/ratings/{late.id}"
    assert "立即生效" not in text(client.get(page))  # notice still running
    post(client, page + "/activate")
    assert late.status == "notice"

    services.withdraw(session, w.town_admin, late, "重新评议", today=today)
    past = today - timedelta(days=30)
    rating = services.draft_rating(session, w.clerk, household, score_for(91), today=past)
    services.post_notice(session, w.clerk, rating, today=past)
    session.commit()
    login_as(client, w.town2_admin)
    assert post(client, f"/admin/ratings/{rating.id}/activate").status_code == 404
    login_as(client, w.town_admin)
    page = f"/admin/ratings/{rating.id}"
    assert "立即生效" in text(client.get(page))
    assert post(client, page + "/activate").status_code == 302
    session.refresh(rating)
    assert rating.status == "effective"
    actions = session.scalars(
        select(AuditEntry.action).where(AuditEntry.action == "rating.activate")
    )
    assert list(actions) == ["rating.activate"]
