"""The benefit list and the partner pages show their buttons by the policy, not by role names
(issue 20): a line of the benefit list is editable exactly where `may_edit_benefit` says, and
the service refuses the rest."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from mall.benefits.models import Benefit
from mall.users import policy
from tests.admin.pages_helpers import login_as, text
from tests.benefits.conftest import World, world  # noqa: F401  (the fixture)
from tests.factories import make_user
from tests.helpers import staff_headers

URL = "/api/v1/admin/benefits"
LINE = {
    "kind": "percent_discount",
    "percent_bp": 2000,
    "cap_fen": 3000,
    "min_level_rank": 4,
    "partner_category": "scenic_spot",
    "title_zh": "景区门票八折",
}


@pytest.mark.parametrize(
    ("role", "region", "edits_county_line", "edits_town_line"),
    [
        ("county_admin", "county", True, True),
        ("township_admin", "town1", False, True),
        ("township_admin", "town2", False, False),
        ("auditor", "county", False, False),
        ("village_clerk", "village", False, False),
    ],
)
def test_benefit_edit_links_follow_the_policy(
    client: FlaskClient,
    session: Session,
    world: World,  # noqa: F811
    role: str,
    region: str,
    edits_county_line: bool,
    edits_town_line: bool,
) -> None:
    c = world.county
    county_admin = make_user(session, "county_admin", c.county)
    town1_admin = make_user(session, "township_admin", c.townships[0])
    regions = {"county": c.county, "town1": c.townships[0], "town2": c.townships[1]}
    regions["village"] = c.villages[0]
    actor = make_user(session, role, regions[region])
    session.commit()
    county_id = client.post(URL, json=LINE, headers=staff_headers(county_admin)).json["id"]  # type: ignore[index]
    town_id = client.post(URL, json=LINE, headers=staff_headers(town1_admin)).json["id"]  # type: ignore[index]
    county_line, town_line = session.get_one(Benefit, county_id), session.get_one(Benefit, town_id)
    for line, expected in ((county_line, edits_county_line), (town_line, edits_town_line)):
        allowed = policy.may_edit_benefit(
            actor, county_id=line.county_id, township_id=line.township_id
        )
        assert allowed is expected, (role, region, line.township_id)
        answer = client.patch(
            f"{URL}/{line.id}", json={"cap_fen": 2000}, headers=staff_headers(actor)
        )
        assert answer.status_code in ((200,) if expected else (403, 404)), answer.json
    login_as(client, actor)
    page = text(client.get("/admin/benefits"))
    assert (f"/admin/benefits/{county_id}/edit" in page) is edits_county_line
    assert (f"/admin/benefits/{town_id}/edit" in page) is edits_town_line


@pytest.mark.parametrize("role", ["county_admin", "township_admin", "auditor", "village_clerk"])
def test_partner_pages_offer_management_to_admins_only(
    client: FlaskClient,
    session: Session,
    world: World,  # noqa: F811
    role: str,
) -> None:
    c = world.county
    region = {"county_admin": c.county, "auditor": c.county, "village_clerk": c.villages[0]}
    actor = make_user(session, role, region.get(role, c.townships[0]))
    session.commit()
    login_as(client, actor)
    allowed = policy.may_manage_partners(actor)
    assert allowed is (role in ("county_admin", "township_admin"))
    assert ("/admin/partners/new" in text(client.get("/admin/partners"))) is allowed
    detail = text(client.get(f"/admin/partners/{world.hospital.id}"))
    assert (f"/admin/partners/{world.hospital.id}/edit" in detail) is allowed
