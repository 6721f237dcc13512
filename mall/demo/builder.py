"""Builds the demo county: regions, households over every level, partners, terminals, staff.

Deterministic (seeded), refuses a non-empty database, commits once, and writes a manifest a
tester or integrator can use at once. Later capabilities add their steps here.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import click
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mall.benefits.demo import build_benefits
from mall.clock import business_date
from mall.demo.names import RELATIONS, id_number, person_name, phone
from mall.extensions import db
from mall.partners.services import create_partner, create_terminal
from mall.ratings.demo import seed_ratings_and_points
from mall.regions.models import Region
from mall.regions.services import create_region
from mall.reservations.demo import build_reservations
from mall.security.passwords import hash_pin
from mall.staff.services import create_user
from mall.subjects.services import MemberInput, create_household
from mall.villages.demo import build_villages

DEMO_PIN = "258036"
DEMO_PASSWORD = "demo-password-2026"  # noqa: S105 (published demo login)
HOUSEHOLDS_PER_VILLAGE = 50
# The default five-star scheme; level None means not rated.
LEVELS = [(None, None), ("1", 1), ("2", 2), ("3", 3), ("4", 4), ("5", 5)]
LEVEL_WEIGHTS = [10, 10, 20, 30, 20, 10]

TOWNSHIPS = [
    ("龙场镇", ["龙场村", "新寨村", "花甲村"]),
    ("双峦镇", ["双峦村", "杨柳村", "桃园村"]),
]
PARTNERS = [
    ("supermarket", "{town}信用超市", True, True),
    ("wholesale", "{town}诚信批发部", True, True),
    ("hospital", "{town}卫生院", False, False),
    ("scenic_spot", "{town}乌蒙大草原景区", False, False),
    ("bus", "{town}城乡公交公司", False, False),
    ("library", "{town}图书馆", False, False),
]


@dataclass
class Manifest:
    admins: list[dict[str, Any]] = field(default_factory=list)
    households: list[dict[str, Any]] = field(default_factory=list)
    terminals: list[dict[str, Any]] = field(default_factory=list)
    catalog: list[dict[str, Any]] = field(default_factory=list)
    partners: list[dict[str, Any]] = field(default_factory=list)
    reservations: list[dict[str, Any]] = field(default_factory=list)  # mall.reservations

    def write(self, path: str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(vars(self), ensure_ascii=False, indent=2), "utf-8")


def build_demo(manifest_path: str | None) -> Manifest:
    session = db.session()
    if session.scalar(select(func.count()).select_from(Region)):
        raise click.ClickException("the database is not empty; the demo fills an empty one")
    manifest = build(session)
    session.commit()
    if manifest_path:
        manifest.write(manifest_path)
    click.echo(
        f"demo county ready: {len(manifest.households)} households, "
        f"{len(manifest.terminals)} terminals, {len(manifest.admins)} staff accounts"
    )
    return manifest


def build(session: Session, *, households_per_village: int = HOUSEHOLDS_PER_VILLAGE) -> Manifest:
    rng = random.Random(20261121)
    m = Manifest()
    county = create_region(session, kind="county", code="520221", name="水城县")
    _staff(session, m, "county_admin", county, "county_admin")
    _staff(session, m, "auditor", county, "auditor")
    pin_hash = hash_pin(DEMO_PIN)  # one hash for every demo household keeps the demo quick
    valid_until = business_date() + timedelta(days=365)
    index = 0
    for t, (town_name, village_names) in enumerate(TOWNSHIPS, start=1):
        town = create_region(
            session, kind="township", code=f"520221{t:03d}", name=town_name, parent=county
        )
        _staff(session, m, f"town{t}_admin", town, "township_admin")
        for v, village_name in enumerate(village_names, start=1):
            village = create_region(
                session,
                kind="village",
                code=f"520221{t:03d}{v:03d}",
                name=village_name,
                parent=town,
            )
            if v == 1:
                _staff(session, m, f"town{t}_clerk", village, "village_clerk")
            for _ in range(households_per_village):
                index += 1
                _household(session, m, rng, village, index, pin_hash, valid_until)
        _partners(session, m, town, t)
    seed_ratings_and_points(session, m, county)
    build_benefits(session, m, county)
    build_villages(session, m, county)
    build_reservations(session, m, county)
    return m


def _staff(
    session: Session, m: Manifest, username: str, region: Region, role: str, partner: Any = None
) -> None:
    create_user(
        session,
        username=username,
        password=DEMO_PASSWORD,
        role=role,
        region=region,
        display_name=username,
        partner=partner,
    )
    m.admins.append(
        {
            "username": username,
            "password": DEMO_PASSWORD,
            "role": role,
            "region": region.name,
            "region_id": region.id,
            "partner_id": partner.id if partner else None,
        }
    )


def _household(
    session: Session,
    m: Manifest,
    rng: random.Random,
    village: Region,
    index: int,
    pin_hash: str,
    valid_until: date,
) -> None:
    head = person_name(rng)
    members = [
        MemberInput(person_name(rng, head[0] if r in ("儿子", "女儿", "孙子", "孙女") else None), r)
        for r in rng.sample(RELATIONS, rng.randint(1, 4))
    ]
    subject = create_household(
        session,
        village=village,
        head_name=head,
        id_number=id_number(rng, "520221", index),
        phone=phone(index),
        members=members,
    )
    subject.pin_hash = pin_hash
    code, _rank = rng.choices(LEVELS, LEVEL_WEIGHTS)[0]
    m.households.append(
        {
            "ref": subject.ref,
            "phone": phone(index),
            "pin": DEMO_PIN,
            "level": code,
            "village": village.name,
            "card_code": None,
        }
    )


def _partners(session: Session, m: Manifest, town: Region, t: int) -> None:
    for category, pattern, integrity, points in PARTNERS:
        partner = create_partner(
            session,
            township=town,
            name=pattern.format(town=town.name),
            category=category,
            address=f"{town.name}街上",
            accepts_integrity=integrity,
            accepts_points=points,
        )
        terminal, secret = create_terminal(session, partner, f"{partner.name}1号收银台")
        _staff(session, m, f"cashier_t{t}_{category}", town, "cashier", partner)
        m.partners.append(
            {
                "partner_id": partner.id,
                "name": partner.name,
                "category": category,
                "township": town.name,
            }
        )
        m.terminals.append(
            {
                "terminal_id": terminal.terminal_id,
                "secret": secret,
                "partner_id": partner.id,
                "partner_category": category,
            }
        )
