"""Believable Chinese names, IDs and phones for the demo county (deterministic)."""

from __future__ import annotations

import random

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程魏"
)
GIVEN = "建华国强秀英桂兰玉珍志明海军丽娟春梅德胜永福金凤成林红霞卫东淑芬文斌学军小燕家宝长青明亮"
RELATIONS = ("配偶", "儿子", "女儿", "父亲", "母亲", "儿媳", "孙子", "孙女")
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)  # GB 11643-1999


def person_name(rng: random.Random, surname: str | None = None) -> str:
    s = surname or rng.choice(SURNAMES)
    n = rng.choice((1, 2, 2, 2))
    return s + "".join(rng.choice(GIVEN) for _ in range(n))


# Birth dates as day numbers: 51 years (1945-1995) of 12 months of 28 days.
_DAYS_PER_YEAR = 12 * 28
_BIRTH_DAYS = 51 * _DAYS_PER_YEAR
_BLOCKS = 100  # thousands of households told apart by the birth date: unique up to 100,000


def id_number(rng: random.Random, area: str, index: int) -> str:
    """A syntactically valid resident ID (GB 11643 check digit) for a made-up person, unique
    per index below 100,000: the sequence code holds the index's last three digits and the
    birth date (random otherwise) its thousands, modulo 100. A date and a sequence code drawn
    at random collided by chance in a county of 10,800 households."""
    year = rng.randint(1945, 1995)
    drawn = (year - 1945) * _DAYS_PER_YEAR + (rng.randint(1, 12) - 1) * 28 + rng.randint(1, 28) - 1
    day = (drawn // _BLOCKS) % (_BIRTH_DAYS // _BLOCKS) * _BLOCKS + (index // 1000) % _BLOCKS
    birth = f"{1945 + day // _DAYS_PER_YEAR}{day % _DAYS_PER_YEAR // 28 + 1:02d}{day % 28 + 1:02d}"
    body = f"{area}{birth}{index % 1000:03d}"
    total = sum(int(d) * w for d, w in zip(body, _WEIGHTS, strict=True))
    return body + "10X98765432"[total % 11]


def phone(index: int) -> str:
    return f"139{55000000 + index:08d}"
