"""Tables as xlsx (openpyxl) and CSV, with Chinese headers: the one place every export goes.

CSV is UTF-8 with a BOM and CRLF line ends, which Excel on Chinese Windows opens correctly.
Money stays integer fen in both: a column named "(分)" never holds yuan with decimals.

Every text cell is written so that a spreadsheet can never run it (OWASP "CSV injection"): a
partner named `=HYPERLINK("http://evil","x")` must reach the office as that text, not as a
live link or a formula. In CSV a text cell that starts with `=`, `+`, `-`, `@`, a tab or a
carriage return gets a leading apostrophe, which Excel and LibreOffice take as "this is
text" (the value keeps every character the user typed). In xlsx every text cell is stored as
a string cell, a type a spreadsheet never evaluates, so it needs no apostrophe; numbers stay
numbers in both, so sums still work.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MIMETYPE = "text/csv; charset=utf-8"

Cell = str | int | None

# What a spreadsheet reads as the start of a formula (or of a cell it re-parses as one).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """`text` as a spreadsheet will show it and never evaluate it (for CSV cells)."""
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def plain(value: Any) -> str | int | float:
    """A cell's value as written: numbers as numbers, times to the minute, dates in ISO form,
    None as empty, anything else as its text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if value is None:
        return ""
    return str(value)


def csv_text(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """The table as CSV text with a BOM; every text cell neutralised."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([neutralise(str(h)) for h in headers])
    for row in rows:
        writer.writerow([_csv_cell(v) for v in row])
    return "\ufeff" + buf.getvalue()


def _csv_cell(value: Any) -> str | int | float:
    cell = plain(value)
    return neutralise(cell) if isinstance(cell, str) else cell


def table_csv(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    return csv_text(headers, rows).encode("utf-8")


def table_xlsx(title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=title[:31] or "Sheet1")
    bold = Font(bold=True)

    def cell(value: Any, font: Font | None = None) -> WriteOnlyCell:
        out = WriteOnlyCell(sheet, value=plain(value))
        if isinstance(out.value, str):
            out.data_type = "s"  # openpyxl makes "=..." a formula; a string cell never runs
        if font is not None:
            out.font = font
        return out

    sheet.append([cell(name, bold) for name in headers])
    for row in rows:
        sheet.append([cell(v) for v in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def export(
    fmt: str, title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]]
) -> tuple[bytes, str, str]:
    """(body, mimetype, file extension) for `fmt` "xlsx" or "csv"."""
    if fmt == "xlsx":
        return table_xlsx(title, headers, rows), XLSX_MIMETYPE, "xlsx"
    return table_csv(headers, rows), CSV_MIMETYPE, "csv"
