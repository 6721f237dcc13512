"""Yuan as typed by a cashier, to integer fen: exact string parsing, never a float."""

from __future__ import annotations

import re
import unicodedata

from mall.errors import ValidationFailed

MAX_FEN = 100_000_000  # the payment service's own ceiling (1,000,000 yuan)
_YUAN = re.compile(r"(\d{1,9})(?:\.(\d{1,2}))?")


def parse_yuan(text: object, *, field: str = "amount", allow_empty: bool = False) -> int | None:
    """Yuan text to fen: "12.3" -> 1230, "12" -> 1200, "0.05" -> 5.

    Refuses more than two decimals, signs, exponents, thousands separators and anything
    over `MAX_FEN` (validation_error naming `field`). Full-width digits (１２.３) and a
    leading ¥ are accepted. Empty: None when `allow_empty`, else refused."""
    raw = unicodedata.normalize("NFKC", text if isinstance(text, str) else "").strip()
    raw = raw.removeprefix("¥").removeprefix("￥").strip()
    if not raw:
        if allow_empty:
            return None
        raise ValidationFailed(details={"fields": {field: ["required"]}})
    match = _YUAN.fullmatch(raw)
    if match is None:
        raise ValidationFailed(details={"fields": {field: ["yuan with at most 2 decimals"]}})
    whole, cents = match.group(1), (match.group(2) or "").ljust(2, "0")
    fen = int(whole) * 100 + int(cents)
    if fen > MAX_FEN:
        raise ValidationFailed(details={"fields": {field: [f"at most {MAX_FEN // 100} yuan"]}})
    return fen


def format_yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"
