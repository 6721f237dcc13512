"""The demo county's benefit list, and a printed integrity card for every household."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mall.benefits.models import Benefit
from mall.clock import business_date
from mall.codes.services import card_code, issue_card
from mall.regions.models import Region
from mall.subjects.models import CreditSubject

# (category, kind, min rank, terms, title zh, title en, description, funded by)
DEMO_BENEFITS: list[dict[str, Any]] = [
    {
        "partner_category": "hospital",
        "kind": "deposit_waiver",
        "min_level_rank": 3,
        "one_at_a_time": True,
        "title_zh": "住院免交押金",
        "title_en": "No deposit for a hospital stay",
        "description": "三星级及以上信用户住院时免交住院押金,出院结算。",
        "description_en": "3 stars and up: admitted without a deposit, settled at discharge.",
    },
    {
        "partner_category": "hospital",
        "kind": "free_item",
        "min_level_rank": 4,
        "cap_fen": 30000,
        "limit_per_year": 1,
        "funded_by": "township_fund",
        "title_zh": "免费健康体检一次",
        "title_en": "One free health check a year",
        "description": "四星级及以上信用户每年免费体检一次,费用由乡镇信用基金支付,最多300元。",
        "description_en": "4 stars and up, once a year, paid by the township credit fund "
        "up to 300 yuan.",
    },
    {
        "partner_category": "hospital",
        "kind": "priority_service",
        "min_level_rank": 5,
        "title_zh": "就医绿色通道",
        "title_en": "Priority at the hospital",
        "description": "五星级信用户挂号、取药优先。",
        "description_en": "5 stars: seen and served first.",
    },
    {
        "partner_category": "scenic_spot",
        "kind": "percent_discount",
        "min_level_rank": 4,
        "percent_bp": 2000,
        "cap_fen": 3000,
        "limit_per_month": 4,
        "title_zh": "景区门票八折",
        "title_en": "20% off scenic spot tickets",
        "description": "四星级及以上信用户门票八折,每张最多优惠30元,每月4次。",
        "description_en": "4 stars and up: 20% off, at most 30 yuan a ticket, 4 a month.",
    },
    {
        "partner_category": "bus",
        "kind": "percent_discount",
        "min_level_rank": 3,
        "percent_bp": 5000,
        "cap_fen": 500,
        "limit_per_day": 2,
        "funded_by": "township_fund",
        "title_zh": "城乡公交半价",
        "title_en": "Half fare on rural buses",
        "description": "三星级及以上信用户乘城乡公交半价,每天2次。",
        "description_en": "3 stars and up: half fare, twice a day.",
    },
    {
        "partner_category": "library",
        "kind": "deposit_waiver",
        "min_level_rank": 1,
        "one_at_a_time": True,
        "title_zh": "借书免押金",
        "title_en": "Borrow books without a deposit",
        "description": "一星级及以上信用户借书免押金,还书后可再借。",
        "description_en": "1 star and up: no deposit; borrow again once returned.",
    },
    {
        "partner_category": "supermarket",
        "kind": "percent_discount",
        "min_level_rank": 1,
        "percent_bp": 500,
        "cap_fen": 2000,
        "limit_per_day": 1,
        "title_zh": "购物九五折",
        "title_en": "5% off your shopping",
        "description": "信用户在信用超市购物九五折,每天一次,最多优惠20元。",
        "description_en": "Rated households: 5% off once a day, at most 20 yuan.",
    },
]


def build_benefits(session: Session, m: Any, county: Region) -> None:
    """The county-wide benefit list, and an integrity card per household (its printed code
    goes into the manifest as `card_code`)."""
    since = business_date().replace(month=1, day=1)
    for spec in DEMO_BENEFITS:
        session.add(
            Benefit(
                county_id=county.id,
                township_id=None,
                valid_from=since,
                funded_by=spec.get("funded_by", "partner"),
                active=True,
                **{k: v for k, v in spec.items() if k != "funded_by"},
            )
        )
    session.flush()
    refs = [h["ref"] for h in m.households]
    subjects = {
        s.ref: s for s in session.scalars(select(CreditSubject).where(CreditSubject.ref.in_(refs)))
    }
    for entry in m.households:
        card = issue_card(session, subjects[entry["ref"]])
        entry["card_serial"] = card.serial
        entry["card_code"] = card_code(session, card)
