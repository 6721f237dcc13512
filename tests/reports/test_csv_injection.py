"""Exports never carry a live spreadsheet formula (issue 19, break 6; OWASP CSV injection).

A partner named `=HYPERLINK("http://evil","x")` was exported as a formula by the reports API,
the settlement page and the audit log. Every export now goes through `mall.reports.exports`.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy.orm import Session

from mall.reports.exports import FORMULA_TRIGGERS, csv_text, neutralise, table_xlsx
from mall.subjects import services as subjects
from tests.admin.pages_helpers import login_as
from tests.helpers import staff_headers
from tests.settlement.conftest import Day

EVIL = '=HYPERLINK("http://evil.example","x")'
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("trigger", FORMULA_TRIGGERS)
def test_each_trigger_is_neutralised(trigger: str) -> None:
    text = f"{trigger}1+1"
    assert neutralise(text) == "'" + text
    assert neutralise("信用超市") == "信用超市"
    rows = list(csv.reader(io.StringIO(csv_text(["名称"], [[text], [-5]]).lstrip("\ufeff"))))
    assert rows[1] == ["'" + text]
    assert rows[2] == ["-5"]  # numbers stay numbers


def test_xlsx_text_is_never_a_formula() -> None:
    sheet = load_workbook(io.BytesIO(table_xlsx("t", ["名称", "金额"], [[EVIL, -5]]))).active
    assert sheet is not None
    name, amount = sheet["A2"], sheet["B2"]
    assert name.data_type == "s"
    assert name.value == EVIL
    assert amount.value == -5


def _csv_cells(body: bytes) -> list[str]:
    return [c for row in csv.reader(io.StringIO(body.decode("utf-8-sig"))) for c in row]


def _assert_safe_csv(body: bytes, expect: str) -> None:
    cells = _csv_cells(body)
    assert "'" + expect in cells, cells[:40]
    live = [c for c in cells if c.startswith(FORMULA_TRIGGERS) and not re.fullmatch(r"-\d+", c)]
    assert live == [], live


def _assert_safe_xlsx(body: bytes, expect: str) -> None:
    sheet = load_workbook(io.BytesIO(body)).worksheets[0]
    cells = [c for row in sheet.iter_rows() for c in row]
    assert [c.coordinate for c in cells if c.data_type == "f"] == []
    assert expect in [c.value for c in cells]


def test_every_export_of_a_hostile_name(
    client: FlaskClient, session: Session, worked_day: Day
) -> None:
    partner = worked_day.world.partner
    partner.name = EVIL
    household = worked_day.world.poor_household
    subjects.change_status(session, worked_day.admin, household, "frozen", EVIL)
    session.commit()
    month = worked_day.day.strftime("%Y-%m")
    headers = staff_headers(worked_day.admin)
    for fmt in ("csv", "xlsx"):
        api = client.get(
            f"/api/v1/admin/reports/partners?from={month}&to={month}&format={fmt}",
            headers=headers,
        )
        assert api.status_code == 200, api.data[:300]
        check = _assert_safe_csv if fmt == "csv" else _assert_safe_xlsx
        check(api.data, EVIL)
    login_as(client, worked_day.admin)
    day = worked_day.day.isoformat()
    for path in (
        f"/admin/settlement?since={day}&until={day}",
        "/admin/partners?",
        "/admin/audit?action=household.status.frozen",
    ):
        for fmt in ("csv", "xlsx"):
            resp = client.get(f"{path}&format={fmt}")
            assert resp.status_code == 200, (path, resp.status_code)
            (_assert_safe_csv if fmt == "csv" else _assert_safe_xlsx)(resp.data, EVIL)


def test_no_export_is_written_outside_the_one_module() -> None:
    """csv.writer and openpyxl's Workbook appear only in mall/reports/exports.py."""
    offenders = []
    for package in ("mall", "admin", "pos_adapter"):
        for path in (ROOT / package).rglob("*.py"):
            if path == ROOT / "mall/reports/exports.py":
                continue
            source = path.read_text(encoding="utf-8")
            if "csv.writer(" in source or "Workbook(" in source:
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
