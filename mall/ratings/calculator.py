"""The civility review (乡风文明评议) and the rating score. Pure functions, no database.

Review: base 80; positive-list items add, at most +20 in total; each negative-list item
deducts; a one-vote-veto item makes the review 0. The review weighs 30% of the rating score
by default; the other components (credit-union household visit, points) and their weights
come from the region's setting `rating_score_weights`. Reviewers related to the household
are recorded as recused and their marks are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mall.errors import ValidationFailed

REVIEW_BASE = 80
REVIEW_POSITIVE_CAP = 20
DEFAULT_WEIGHTS = {"civility": 30, "visit": 40, "points": 30}


@dataclass(frozen=True)
class ReviewItem:
    code: str
    points: int = 0  # positive-list items add, negative-list items deduct (absolute value)
    kind: str = "positive"  # positive | negative | veto


@dataclass(frozen=True)
class Reviewer:
    name: str
    related: bool = False  # kin or otherwise related to the household: recuses


@dataclass(frozen=True)
class ReviewResult:
    score: int
    positive: int
    negative: int
    vetoed: bool
    reviewers: list[str] = field(default_factory=list)
    recused: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def civility_review(
    items: list[ReviewItem], reviewers: list[Reviewer] | None = None
) -> ReviewResult:
    positive = negative = 0
    vetoed = False
    for item in items:
        if item.kind not in ("positive", "negative", "veto"):
            raise ValidationFailed(details={"fields": {"items": [f"unknown kind {item.kind!r}"]}})
        if item.points < 0:
            raise ValidationFailed(details={"fields": {"items": ["points are given as >= 0"]}})
        if item.kind == "positive":
            positive += item.points
        elif item.kind == "negative":
            negative += item.points
        else:
            vetoed = True
    positive = min(positive, REVIEW_POSITIVE_CAP)
    score = 0 if vetoed else max(0, min(100, REVIEW_BASE + positive - negative))
    people = reviewers or []
    return ReviewResult(
        score=score,
        positive=positive,
        negative=negative,
        vetoed=vetoed,
        reviewers=[r.name for r in people if not r.related],
        recused=[r.name for r in people if r.related],
    )


def rating_score(components: dict[str, float], weights: dict[str, int] | None = None) -> float:
    """Weighted mean of component scores (each 0-100); weights in percent, summing to 100.
    A component without a score counts 0: a missing visit is not a perfect visit."""
    w = weights or DEFAULT_WEIGHTS
    if sum(w.values()) != 100 or any(v < 0 for v in w.values()):
        raise ValidationFailed(details={"fields": {"weights": ["non-negative, summing to 100"]}})
    for name, value in components.items():
        if name not in w:
            raise ValidationFailed(details={"fields": {name: ["not a score component"]}})
        if not 0 <= value <= 100:
            raise ValidationFailed(details={"fields": {name: ["0 to 100"]}})
    total = sum(components.get(name, 0.0) * weight for name, weight in w.items()) / 100
    return round(total, 2)


def points_score(points_earned: int, full_score_points: int) -> float:
    """A points-derived component: the period's earned points against the region's target."""
    if full_score_points <= 0:
        return 0.0
    return round(min(100.0, 100.0 * max(points_earned, 0) / full_score_points), 2)
