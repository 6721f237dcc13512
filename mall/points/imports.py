"""Reading event files (xlsx or csv) and checking every row.

Columns are found by their header (Chinese or English): household ref (户编号), rule code
(规则代码), date (日期) and an optional note (备注). Each bad row is reported with its row number
(as Excel shows it, the header being row 1) and a reason; the caller decides whether the good
rows may go ahead.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from openpyxl import load_workbook

from mall.errors import ValidationFailed

MAX_ROWS = 200_000
MAX_AGE_DAYS = 366
HEADERS = {
    "ref": {"户编号", "户号", "农户编号", "ref", "household", "household_ref"},
    "rule": {"规则代码", "规则", "积分规则", "rule", "rule_code"},
    "date": {"日期", "发生日期", "date", "occurred_on"},
    "note": {"备注", "说明", "note"},
}
REQUIRED = ("ref", "rule", "date")


@dataclass(frozen=True)
class Household:
    id: int
    village_id: int
    status: str


@dataclass(frozen=True)
class RuleRef:
    id: int
    points: int


@dataclass(frozen=True)
class GoodRow:
    row_number: int
    subject_id: int
    village_id: int
    rule_id: int
    points: int
    occurred_on: date
    note: str


@dataclass
class Checked:
    good: list[GoodRow]
    bad: list[tuple[int, str]]  # (row number, reason)
    total: int


def read_rows(filename: str, content: bytes) -> Iterator[tuple[Any, ...]]:
    """Rows of the first sheet (xlsx) or of the file (csv, UTF-8 with or without BOM, or GBK)."""
    name = filename.lower()
    if name.endswith(".xlsx"):
        try:
            wb = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds for a damaged file
            raise ValidationFailed(
                details={"fields": {"file": ["not a readable xlsx file"]}}
            ) from exc
        try:
            yield from wb.worksheets[0].iter_rows(values_only=True)
        finally:
            wb.close()
        return
    if name.endswith(".csv"):
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                text = content.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:
            raise ValidationFailed(details={"fields": {"file": ["unknown text encoding"]}})
        yield from csv.reader(io.StringIO(text))
        return
    raise ValidationFailed(details={"fields": {"file": [".xlsx or .csv"]}})


def _columns(header: tuple[Any, ...]) -> dict[str, int]:
    found: dict[str, int] = {}
    for index, cell in enumerate(header):
        label = str(cell or "").strip().lower()
        for key, names in HEADERS.items():
            if label in names and key not in found:
                found[key] = index
    missing = [k for k in REQUIRED if k not in found]
    if missing:
        raise ValidationFailed(
            details={"fields": {"file": [f"missing column(s): {', '.join(missing)}"]}}
        )
    return found


def _parse_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value or "").strip()
    for fmt in ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d"):
        try:
            return datetime.strptime(text, fmt).date()  # noqa: DTZ007 (a calendar date, no time)
        except ValueError:
            continue
    return None


def check_rows(  # noqa: C901 (to split by step, issue 20)
    rows: Iterator[tuple[Any, ...]],
    *,
    households: dict[str, Household],
    rules: dict[int, dict[str, RuleRef]],  # village id -> rule code -> rule
    village_id: int | None,
    today: date,
) -> Checked:
    """Validate every row; nothing is written here."""
    try:
        header = next(rows)
    except StopIteration:
        raise ValidationFailed(details={"fields": {"file": ["empty file"]}}) from None
    cols = _columns(tuple(header))
    oldest = today - timedelta(days=MAX_AGE_DAYS)
    good: list[GoodRow] = []
    bad: list[tuple[int, str]] = []
    seen: dict[tuple[int, int, date], int] = {}
    total = 0
    width = max(cols.values()) + 1
    for number, raw in enumerate(rows, start=2):
        row = tuple(raw) + (None,) * max(0, width - len(raw))
        if all(v is None or str(v).strip() == "" for v in row):
            continue  # blank lines are not rows
        total += 1
        if total > MAX_ROWS:
            raise ValidationFailed(details={"fields": {"file": [f"at most {MAX_ROWS} rows"]}})
        ref = str(row[cols["ref"]] or "").strip()
        code = str(row[cols["rule"]] or "").strip()
        household = households.get(ref)
        if not ref:
            bad.append((number, "缺少户编号"))
            continue
        if household is None or (village_id is not None and household.village_id != village_id):
            bad.append((number, f"户编号不存在或不在本辖区: {ref}"))
            continue
        if household.status == "revoked":
            bad.append((number, "该户信用已撤销"))
            continue
        rule = rules.get(household.village_id, {}).get(code)
        if rule is None:
            bad.append((number, f"积分规则不存在或未启用: {code}"))
            continue
        day = _parse_date(row[cols["date"]])
        if day is None:
            bad.append((number, "日期格式应为 YYYY-MM-DD"))
            continue
        if day > today:
            bad.append((number, "日期不能晚于今天"))
            continue
        if day < oldest:
            bad.append((number, "日期早于一年前"))
            continue
        key = (household.id, rule.id, day)
        if key in seen:
            bad.append((number, f"与第{seen[key]}行重复"))
            continue
        seen[key] = number
        note = str(row[cols["note"]] or "").strip()[:200] if "note" in cols else ""
        good.append(
            GoodRow(number, household.id, household.village_id, rule.id, rule.points, day, note)
        )
    return Checked(good, bad, total)
