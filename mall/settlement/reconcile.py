"""Reconciliation: a partner's own record of a day against ours, to the fen.

The upload is CSV (UTF-8, with or without BOM; GB18030 is accepted too, as Excel on Chinese
Windows writes it) or xlsx (the first sheet). The first row names the columns, in Chinese or
English (docs/settlement.md):

| 中文 | English | |
| --- | --- | --- |
| 支付单号 | payment_id | our payment id (pay_...) or refund id (rf_...) |
| 外部单号 | external_ref | the POS's own reference, sent with the payment |
| 金额(分) | amount_fen | sale (or refund) amount, integer fen; required |
| 诚信金抵扣(分) | integrity_discount_fen | optional |
| 积分 | points | optional |

Each row is matched by payment id, else by external reference. Our completed payments and
refunds of the day that the file lacks are `missing`; rows we cannot find are `extra`; rows
that differ in an amount (or name a voided payment) are `mismatched`. The file is stored
with the result, for audit.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mall.audit import services as audit
from mall.errors import ValidationFailed
from mall.partners.models import Partner
from mall.payments.models import Payment, Refund
from mall.settlement.models import Reconciliation
from mall.users.models import User

MAX_BYTES = 10 * 1024 * 1024
MAX_ROWS = 200_000

COLUMNS = {
    "payment_id": ("支付单号", "交易单号", "payment_id"),
    "external_ref": ("外部单号", "商户单号", "external_ref"),
    "amount_fen": ("金额(分)", "金额", "amount_fen"),
    "integrity_discount_fen": ("诚信金抵扣(分)", "诚信金抵扣", "integrity_discount_fen"),
    "points": ("积分", "points"),
}
_COMPARED = ("amount_fen", "integrity_discount_fen", "points")


def _norm(header: object) -> str:
    text = str(header or "").strip().lower().replace("（", "(").replace("）", ")")
    return text.replace(" ", "")


_LOOKUP = {_norm(name): key for key, names in COLUMNS.items() for name in names}


@dataclass
class PartnerRow:
    line: int
    payment_id: str | None
    external_ref: str | None
    values: dict[str, int]


def _cells_csv(content: bytes) -> list[list[object]]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = content.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes any byte string
        raise ValidationFailed(details={"fields": {"file": ["not UTF-8 or GB18030 text"]}})
    return [list(r) for r in csv.reader(io.StringIO(text))]


def _cells_xlsx(content: bytes) -> list[list[object]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a bad file
        raise ValidationFailed(details={"fields": {"file": ["not a readable xlsx file"]}}) from exc
    try:
        sheet = book.worksheets[0]
        return [list(r) for r in sheet.iter_rows(values_only=True)]
    finally:
        book.close()


def _integer(value: object) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(value)
        return int(value)
    text = str(value).strip().replace(",", "")
    if text.endswith(".0"):
        text = text[:-2]
    return int(text)


def parse(content: bytes, file_format: str) -> tuple[list[PartnerRow], list[dict[str, Any]]]:
    """The rows of an upload, and per-row errors (line numbers count the header as 1)."""
    if len(content) > MAX_BYTES:
        raise ValidationFailed(details={"fields": {"file": [f"at most {MAX_BYTES} bytes"]}})
    cells = _cells_xlsx(content) if file_format == "xlsx" else _cells_csv(content)
    cells = [r for r in cells if any(c not in (None, "") for c in r)]
    if not cells:
        raise ValidationFailed(details={"fields": {"file": ["empty file"]}})
    header = [_LOOKUP.get(_norm(h)) for h in cells[0]]
    if "amount_fen" not in header or not {"payment_id", "external_ref"} & set(header):
        raise ValidationFailed(
            details={"fields": {"file": ["columns 金额(分) and 支付单号 or 外部单号 required"]}}
        )
    if len(cells) - 1 > MAX_ROWS:
        raise ValidationFailed(details={"fields": {"file": [f"at most {MAX_ROWS} rows"]}})
    rows: list[PartnerRow] = []
    errors: list[dict[str, Any]] = []
    for number, raw in enumerate(cells[1:], start=2):
        record = {key: raw[i] if i < len(raw) else None for i, key in enumerate(header) if key}
        pid = str(record.get("payment_id") or "").strip() or None
        ref = str(record.get("external_ref") or "").strip() or None
        if pid is None and ref is None:
            errors.append({"line": number, "error": "支付单号或外部单号必填 / id required"})
            continue
        values: dict[str, int] = {}
        try:
            for key in _COMPARED:
                value = _integer(record.get(key))
                if value is not None:
                    values[key] = value
        except ValueError:
            errors.append({"line": number, "error": "金额须为整数(分) / integer fen"})
            continue
        if "amount_fen" not in values:
            errors.append({"line": number, "error": "金额必填 / amount_fen required"})
            continue
        rows.append(PartnerRow(number, pid, ref, values))
    return rows, errors


@dataclass
class Ours:
    kind: str  # payment | refund
    public_id: str
    external_ref: str | None
    status: str
    values: dict[str, int]


def _ours(session: Session, partner_id: int, day: date) -> list[Ours]:
    payments = session.execute(
        select(
            Payment.public_id,
            Payment.external_ref,
            Payment.status,
            Payment.amount_fen,
            Payment.integrity_discount_fen,
            Payment.points_cost,
        ).where(Payment.partner_id == partner_id, Payment.business_date == day)
    ).all()
    refunds = session.execute(
        select(Refund.public_id, Refund.amount_fen, Refund.integrity_fen, Refund.points).where(
            Refund.partner_id == partner_id, Refund.business_date == day
        )
    ).all()
    found = [
        Ours(
            "payment",
            p.public_id,
            p.external_ref,
            p.status,
            {
                "amount_fen": p.amount_fen,
                "integrity_discount_fen": p.integrity_discount_fen,
                "points": p.points_cost,
            },
        )
        for p in payments
    ]
    found += [
        Ours(
            "refund",
            r.public_id,
            None,
            "refund",
            {
                "amount_fen": r.amount_fen,
                "integrity_discount_fen": r.integrity_fen,
                "points": r.points,
            },
        )
        for r in refunds
    ]
    return found


def match(
    rows: list[PartnerRow], ours: list[Ours]
) -> tuple[int, list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(matched count, mismatched, missing, extra)."""
    by_id = {o.public_id: o for o in ours}
    by_ref = {o.external_ref: o for o in ours if o.external_ref}
    seen: set[str] = set()
    matched = 0
    mismatched: list[dict[str, Any]] = []
    extra: list[dict[str, Any]] = []
    for row in rows:
        found = (by_id.get(row.payment_id) if row.payment_id else None) or (
            by_ref.get(row.external_ref) if row.external_ref else None
        )
        if found is None or found.public_id in seen:
            extra.append(
                {
                    "line": row.line,
                    "payment_id": row.payment_id,
                    "external_ref": row.external_ref,
                    "reason": "duplicate" if found is not None else "not_found",
                    **row.values,
                }
            )
            continue
        seen.add(found.public_id)
        differences = {
            key: {"ours": found.values[key], "theirs": value}
            for key, value in row.values.items()
            if found.values[key] != value
        }
        if found.status in ("voided", "expired", "authorized"):
            mismatched.append(
                {
                    "line": row.line,
                    "payment_id": found.public_id,
                    "status": found.status,
                    "differences": differences,
                    "reason": found.status,
                }
            )
        elif differences:
            mismatched.append(
                {
                    "line": row.line,
                    "payment_id": found.public_id,
                    "status": found.status,
                    "differences": differences,
                    "reason": "amounts",
                }
            )
        else:
            matched += 1
    missing = [
        {"payment_id": o.public_id, "external_ref": o.external_ref, "kind": o.kind, **o.values}
        for o in ours
        if o.public_id not in seen and o.status in ("completed", "refund")
    ]
    return matched, mismatched, missing, extra


def reconcile(
    session: Session,
    user: User,
    partner: Partner,
    day: date,
    *,
    filename: str,
    content: bytes,
) -> Reconciliation:
    """Parse, match and store one upload with its result (audited)."""
    lowered = (filename or "").lower()
    if lowered.endswith(".xlsx"):
        file_format = "xlsx"
    elif lowered.endswith(".csv"):
        file_format = "csv"
    else:
        raise ValidationFailed(details={"fields": {"file": [".csv or .xlsx"]}})
    rows, errors = parse(content, file_format)
    matched, mismatched, missing, extra = match(rows, _ours(session, partner.id, day))
    record = Reconciliation(
        partner_id=partner.id,
        county_id=partner.county_id,
        township_id=partner.township_id,
        business_date=day,
        filename=filename[-200:],
        file_format=file_format,
        file_sha256=hashlib.sha256(content).hexdigest(),
        content=content,
        uploaded_by=f"user:{user.id}",
        rows_count=len(rows) + len(errors),
        matched_count=matched,
        mismatched_count=len(mismatched),
        missing_count=len(missing),
        extra_count=len(extra),
        result={"mismatched": mismatched, "missing": missing, "extra": extra, "errors": errors},
    )
    session.add(record)
    session.flush()
    audit.record(
        session,
        actor=user,
        action="settlement.reconcile",
        object_type="settlement_reconciliation",
        object_id=record.id,
        county_id=partner.county_id,
        township_id=partner.township_id,
        after={
            "partner_id": partner.id,
            "business_date": day.isoformat(),
            "file_sha256": record.file_sha256,
            "matched": matched,
            "mismatched": len(mismatched),
            "missing": len(missing),
            "extra": len(extra),
        },
    )
    return record
