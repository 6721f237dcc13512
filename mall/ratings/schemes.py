"""Rating schemes: the built-in ones, a county's own, and which applies to a region.

A region names its scheme in the inherited setting `rating_scheme`; a county may define its
own scheme under any code (its money per level, discounts, thresholds), which then wins over
a built-in of the same code. Periods come from the setting `rating_period` (year or quarter).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mall.errors import Conflict, ValidationFailed
from mall.ratings.models import PERIOD_KINDS, RatingScheme, RatingSchemeLevel
from mall.regions.models import Region
from mall.regions.services import effective_settings


@dataclass(frozen=True)
class Level:
    code: str
    label_zh: str
    label_en: str
    rank: int  # 1 is the lowest grade
    integrity_money_fen: int  # granted per rating period
    discount_bp: int  # share of a sale paid from integrity money, in basis points
    score_threshold: int  # the lowest rating score (0-100) that earns this level
    credit_household: bool  # counts as a credit household (信用户)

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass(frozen=True)
class Scheme:
    code: str
    name_zh: str
    name_en: str
    levels: tuple[Level, ...]  # highest rank first
    built_in: bool = True

    def level(self, code: str | None) -> Level | None:
        return next((lv for lv in self.levels if lv.code == code), None)

    def level_for_score(self, score: float) -> Level | None:
        """The highest level whose threshold the score reaches; None: not rated."""
        return next((lv for lv in self.levels if score >= lv.score_threshold), None)


def _stars() -> tuple[Level, ...]:
    # Shuicheng, Longchang township: 400..2,000 yuan and 2..10% by star (domain brief).
    thresholds = {1: 60, 2: 70, 3: 80, 4: 90, 5: 95}
    zh = {1: "一星级", 2: "二星级", 3: "三星级", 4: "四星级", 5: "五星级"}
    return tuple(
        Level(
            str(n),
            zh[n],
            f"{n} star" + ("s" if n > 1 else ""),
            n,
            40000 * n,
            200 * n,
            thresholds[n],
            True,
        )
        for n in range(5, 0, -1)
    )


def _grades() -> tuple[Level, ...]:
    # Dahuaping (Anhui): AAA..D, A and above are credit households. The sources give no money
    # or discount per grade, so a county sets its own through a custom scheme.
    rows = [("AAA", 6, 90), ("AA", 5, 80), ("A", 4, 70), ("B", 3, 60), ("C", 2, 50), ("D", 1, 0)]
    return tuple(Level(c, c, c, r, 0, 0, t, r >= 4) for c, r, t in rows)


def _three_to_five_a() -> tuple[Level, ...]:
    # Shuangluan: 3A, 4A, 5A; only 3A and above exchange points.
    rows = [("5A", 3, 90), ("4A", 2, 80), ("3A", 1, 70)]
    return tuple(Level(c, c, c, r, 0, 0, t, True) for c, r, t in rows)


BUILT_IN: dict[str, Scheme] = {
    s.code: s
    for s in (
        Scheme("five_star", "五星级评定", "Five stars", _stars()),
        Scheme("aaa_d", "AAA-D 信用等级", "AAA to D grades", _grades()),
        Scheme("three_to_five_a", "3A-5A 信用等级", "3A to 5A grades", _three_to_five_a()),
    )
}
DEFAULT_SCHEME = "five_star"


# --- Scheme families of the other subject kinds (issue 10) --------------------------------
# Dahuaping (seed 002): new agricultural business entities AAA..D like households, village
# collective economic organisations AAA/AA/A/B, credit villages AAA/AA/A; A and above counts as
# "credit" (信用主体). A county adjusts a family by defining its own scheme under the same code.


def _collective_grades() -> tuple[Level, ...]:
    rows = [("AAA", 4, 90), ("AA", 3, 80), ("A", 2, 70), ("B", 1, 0)]
    return tuple(Level(c, c, c, r, 0, 0, t, r >= 2) for c, r, t in rows)


def _credit_village_grades() -> tuple[Level, ...]:
    rows = [("AAA", 3, 90), ("AA", 2, 80), ("A", 1, 70)]
    return tuple(
        Level(c, f"{c}级信用村", f"{c} credit village", r, 0, 0, t, True) for c, r, t in rows
    )


KIND_SCHEMES: dict[str, str] = {
    "business": "business_aaa_d",
    "collective": "collective_aaa_b",
    "village": "credit_village",
}
BUILT_IN.update(
    {
        s.code: s
        for s in (
            Scheme(
                "business_aaa_d", "新型农业经营主体 AAA-D", "Business entities AAA-D", _grades()
            ),
            Scheme(
                "collective_aaa_b",
                "村集体经济组织 AAA-B",
                "Village collectives AAA-B",
                _collective_grades(),
            ),
            Scheme(
                "credit_village", "信用村 AAA-A", "Credit villages AAA-A", _credit_village_grades()
            ),
        )
    }
)


def _from_rows(row: RatingScheme, levels: list[RatingSchemeLevel]) -> Scheme:
    return Scheme(
        code=row.code,
        name_zh=row.name_zh,
        name_en=row.name_en,
        levels=tuple(
            Level(
                lv.code,
                lv.label_zh,
                lv.label_en,
                lv.rank,
                lv.integrity_money_fen,
                lv.discount_bp,
                lv.score_threshold,
                lv.credit_household,
            )
            for lv in sorted(levels, key=lambda x: -x.rank)
        ),
        built_in=False,
    )


def get_scheme(session: Session, county_id: int | None, code: str) -> Scheme:
    if county_id is not None:
        row = session.scalar(
            select(RatingScheme).where(
                RatingScheme.county_id == county_id, RatingScheme.code == code
            )
        )
        if row is not None:
            levels = list(
                session.scalars(
                    select(RatingSchemeLevel).where(RatingSchemeLevel.scheme_id == row.id)
                )
            )
            return _from_rows(row, levels)
    scheme = BUILT_IN.get(code)
    if scheme is None:
        raise ValidationFailed(details={"fields": {"rating_scheme": [f"unknown scheme {code!r}"]}})
    return scheme


def scheme_for_region(session: Session, region: Region) -> Scheme:
    settings = effective_settings(session, region)
    return get_scheme(session, region.county_id, settings.get("rating_scheme") or DEFAULT_SCHEME)


def scheme_for_kind(session: Session, region: Region, kind: str) -> Scheme:
    """The scheme of a subject kind in a region: households follow the region's
    `rating_scheme` setting, the other kinds their family (KIND_SCHEMES)."""
    if kind == "household":
        return scheme_for_region(session, region)
    return get_scheme(session, region.county_id, KIND_SCHEMES[kind])


def list_schemes(session: Session, county_id: int) -> list[Scheme]:
    rows = list(session.scalars(select(RatingScheme).where(RatingScheme.county_id == county_id)))
    custom = {r.code: r for r in rows}
    levels: dict[int, list[RatingSchemeLevel]] = {r.id: [] for r in rows}
    if rows:
        for lv in session.scalars(
            select(RatingSchemeLevel).where(RatingSchemeLevel.scheme_id.in_(levels))
        ):
            levels[lv.scheme_id].append(lv)
    out = [_from_rows(r, levels[r.id]) for r in rows]
    out.extend(s for code, s in BUILT_IN.items() if code not in custom)
    return out


def define_scheme(
    session: Session,
    *,
    county_id: int,
    code: str,
    name_zh: str,
    name_en: str,
    levels: list[dict[str, Any]],
) -> Scheme:
    """Create a county's own scheme. Levels need distinct codes and ranks, and thresholds
    that rise with rank, so a score maps to exactly one level."""
    if session.scalar(
        select(RatingScheme.id).where(
            RatingScheme.county_id == county_id, RatingScheme.code == code
        )
    ):
        raise Conflict(details={"code": code})
    ordered = sorted(levels, key=lambda lv: lv["rank"])
    problems: list[str] = []
    if not ordered:
        problems.append("at least one level")
    if len({lv["code"] for lv in ordered}) != len(ordered) or len(
        {lv["rank"] for lv in ordered}
    ) != len(ordered):
        problems.append("distinct codes and ranks")
    if any(a["score_threshold"] >= b["score_threshold"] for a, b in itertools.pairwise(ordered)):
        problems.append("thresholds rise with rank")
    if problems:
        raise ValidationFailed(details={"fields": {"levels": problems}})
    row = RatingScheme(county_id=county_id, code=code, name_zh=name_zh, name_en=name_en)
    session.add(row)
    session.flush()
    rows = [
        RatingSchemeLevel(
            scheme_id=row.id,
            code=lv["code"],
            label_zh=lv["label_zh"],
            label_en=lv.get("label_en") or lv["code"],
            rank=lv["rank"],
            integrity_money_fen=lv.get("integrity_money_fen", 0),
            discount_bp=lv.get("discount_bp", 0),
            score_threshold=lv["score_threshold"],
            credit_household=lv.get("credit_household", True),
        )
        for lv in ordered
    ]
    session.add_all(rows)
    session.flush()
    return _from_rows(row, rows)


def period_for(kind: str, day: date) -> tuple[date, date]:
    """The calendar year or quarter containing `day`: (first day, last day)."""
    if kind not in PERIOD_KINDS:
        raise ValidationFailed(details={"fields": {"rating_period": list(PERIOD_KINDS)}})
    if kind == "year":
        return date(day.year, 1, 1), date(day.year, 12, 31)
    first_month = 3 * ((day.month - 1) // 3) + 1
    start = date(day.year, first_month, 1)
    nxt = date(day.year + (first_month == 10), (first_month + 2) % 12 + 1, 1)
    return start, nxt - timedelta(days=1)
