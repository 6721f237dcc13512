"""Test data builders over the real services (no mocks of our own database)."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

from sqlalchemy.orm import Session

from mall.partners.models import Partner
from mall.partners.services import create_partner
from mall.regions.models import Region
from mall.regions.services import create_region
from mall.staff.services import create_user
from mall.subjects.models import CreditSubject
from mall.subjects.services import MemberInput, create_household
from mall.users.models import User

_seq = itertools.count(1)
PASSWORD = "correct-horse-battery"
PIN = "135790"


@dataclass
class County:
    county: Region
    townships: list[Region]
    villages: list[Region]  # villages[i] belongs to townships[i // 2]


def make_county(session: Session, townships: int = 2, villages_per_township: int = 2) -> County:
    n = next(_seq)
    county = create_region(session, kind="county", code=f"C{n}", name=f"测试县{n}")
    ts, vs = [], []
    for t in range(townships):
        town = create_region(
            session, kind="township", code=f"C{n}T{t}", name=f"第{t + 1}镇", parent=county
        )
        ts.append(town)
        for v in range(villages_per_township):
            vs.append(
                create_region(
                    session,
                    kind="village",
                    code=f"C{n}T{t}V{v}",
                    name=f"第{t + 1}镇{v + 1}村",
                    parent=town,
                )
            )
    return County(county, ts, vs)


# Not the global `random`: Hypothesis and other tests seed it, and two households of one test
# must never draw the same ID number (a unique blind index).
_rng = random.SystemRandom()


def random_id_number() -> str:
    return (
        "340823"
        + "".join(_rng.choice("0123456789") for _ in range(11))
        + _rng.choice("0123456789X")
    )


def random_phone() -> str:
    return "13" + "".join(_rng.choice("0123456789") for _ in range(9))


def make_household(
    session: Session,
    village: Region,
    *,
    name: str = "张建华",
    phone: str | None = None,
    id_number: str | None = None,
    pin: str | None = PIN,
) -> CreditSubject:
    return create_household(
        session,
        village=village,
        head_name=name,
        id_number=id_number or random_id_number(),
        phone=phone or random_phone(),
        pin=pin,
        members=[MemberInput("李秀英", "配偶")],
    )


def make_partner(
    session: Session, township: Region, *, category: str = "supermarket", name: str | None = None
) -> Partner:
    return create_partner(
        session,
        township=township,
        name=name or f"信用超市{next(_seq)}",
        category=category,
        accepts_integrity=True,
        accepts_points=category == "supermarket",
    )


def make_user(
    session: Session,
    role: str,
    region: Region,
    *,
    partner: Partner | None = None,
    username: str | None = None,
) -> User:
    return create_user(
        session,
        username=username or f"{role}{next(_seq)}",
        password=PASSWORD,
        role=role,
        region=region,
        partner=partner,
    )
