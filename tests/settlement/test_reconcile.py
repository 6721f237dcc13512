"""Reconciliation: the partner's own record against ours, CSV or xlsx, Chinese or English."""

from __future__ import annotations

import io

import pytest
from openpyxl import Workbook
from sqlalchemy.orm import Session

from mall.errors import ValidationFailed
from mall.payments.services import void_payment
from mall.settlement.reconcile import reconcile
from tests.settlement.conftest import Day, pay


def _xlsx(rows: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_matches_by_id_and_external_ref(session: Session, worked_day: Day) -> None:
    d = worked_day
    second = pay(session, d.world, 2_000, ref="POS-0002")
    third = pay(session, d.world, 4_000, ref="POS-0003")
    voided = pay(session, d.world, 1_000, ref="POS-0004")
    void_payment(session, voided, actor="t")
    refund = d.payment.refunds[0]
    content = _xlsx(
        [
            ["支付单号", "外部单号", "金额（分）", "诚信金抵扣(分)", "积分"],
            [None, "POS-0001", 10_000, 600, 50],  # matched by external ref
            [second.public_id, None, 2_000, 119, 0],  # mismatched: 120 ours
            [refund.public_id, None, 3_000, 180, 0],  # the refund, matched
            [None, "POS-0004", 1_000, 60, 0],  # voided on our side
            [None, "POS-9999", 500, 30, 0],  # extra: not ours
            ["pay_unknown", None, "abc", None, None],  # error: not an integer
        ]
    )
    result = reconcile(
        session, d.admin, d.world.partner, d.day, filename="对账.xlsx", content=content
    )
    assert (result.matched_count, result.mismatched_count) == (2, 2)
    assert (result.missing_count, result.extra_count) == (1, 1)
    assert result.rows_count == 6
    mismatched = {m["payment_id"]: m for m in result.result["mismatched"]}
    assert mismatched[second.public_id]["differences"] == {
        "integrity_discount_fen": {"ours": 120, "theirs": 119}
    }
    assert mismatched[voided.public_id]["reason"] == "voided"
    assert [m["payment_id"] for m in result.result["missing"]] == [third.public_id]
    assert result.result["extra"][0]["external_ref"] == "POS-9999"
    assert result.result["errors"][0]["line"] == 7
    assert result.content == content
    assert len(result.file_sha256) == 64


def test_csv_with_english_headers_and_bom(session: Session, worked_day: Day) -> None:
    d = worked_day
    text = (
        "\ufeffpayment_id,external_ref,amount_fen,integrity_discount_fen\r\n"
        f"{d.payment.public_id},,10000,600\r\n"
        f"{d.payment.refunds[0].public_id},,3000,180\r\n"
    )
    result = reconcile(
        session, d.admin, d.world.partner, d.day, filename="day.csv", content=text.encode()
    )
    assert (result.matched_count, result.mismatched_count, result.missing_count) == (2, 0, 0)


def test_gb18030_csv(session: Session, worked_day: Day) -> None:
    d = worked_day
    text = "外部单号,金额(分)\r\nPOS-0001,10000\r\n"
    result = reconcile(
        session,
        d.admin,
        d.world.partner,
        d.day,
        filename="day.CSV",
        content=text.encode("gb18030"),
    )
    assert result.matched_count == 1
    assert result.missing_count == 1  # the refund is not in their file


def test_refuses_files_without_the_columns(session: Session, worked_day: Day) -> None:
    d = worked_day
    with pytest.raises(ValidationFailed):
        reconcile(session, d.admin, d.world.partner, d.day, filename="a.csv", content=b"x,y\n1,2\n")
    with pytest.raises(ValidationFailed):
        reconcile(session, d.admin, d.world.partner, d.day, filename="a.txt", content=b"")
    with pytest.raises(ValidationFailed):
        reconcile(session, d.admin, d.world.partner, d.day, filename="a.xlsx", content=b"nope")
