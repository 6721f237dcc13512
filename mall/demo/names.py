"""Believable Chinese names, IDs and phones for the demo county (deterministic)."""

from __future__ import annotations

import random

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程魏"
)
GIVEN = "建华国强秀英桂兰玉珍志明海军丽娟春梅德胜永福金凤成林红霞卫东淑芬文斌学军小燕家宝长青明亮"
RELATIONS = ("配偶", "儿子", "女儿", "父亲", "母亲", "儿媳", "孙子", "孙女")
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 10, 6, 3, 1, 9, 8, 4, 2, 1, 7)


def person_name(rng: random.Random, surname: str | None = None) -> str:
    s = surname or rng.choice(SURNAMES)
    n = rng.choice((1, 2, 2, 2))
    return s + "".join(rng.choice(GIVEN) for _ in range(n))


def id_number(rng: random.Random, area: str, index: int) -> str:
    """A syntactically valid resident ID (GB 11643 check digit) for a made-up person."""
    year = rng.randint(1945, 1995)
    body = f"{area}{year}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{index % 1000:03d}"
    total = sum(int(d) * w for d, w in zip(body, _WEIGHTS, strict=True))
    return body + "10X98765432"[total % 11]


def phone(index: int) -> str:
    return f"139{55000000 + index:08d}"
