"""Tables as xlsx (openpyxl) and CSV, with Chinese headers.

CSV is UTF-8 with a BOM and CRLF line ends, which Excel on Chinese Windows opens correctly.
Money stays integer fen in both: a column named "(分)" never holds yuan with decimals.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MIMETYPE = "text/csv; charset=utf-8"

Cell = str | int | None


def table_csv(headers: Sequence[str], rows: Iterable[Sequence[Cell]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def table_xlsx(title: str, headers: Sequence[str], rows: Iterable[Sequence[Cell]]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=title[:31] or "Sheet1")
    bold = Font(bold=True)
    from openpyxl.cell import WriteOnlyCell

    header_cells = []
    for name in headers:
        cell = WriteOnlyCell(sheet, value=name)
        cell.font = bold
        header_cells.append(cell)
    sheet.append(header_cells)
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def export(
    fmt: str, title: str, headers: Sequence[str], rows: Iterable[Sequence[Cell]]
) -> tuple[bytes, str, str]:
    """(body, mimetype, file extension) for `fmt` "xlsx" or "csv"."""
    if fmt == "xlsx":
        return table_xlsx(title, headers, rows), XLSX_MIMETYPE, "xlsx"
    return table_csv(headers, rows), CSV_MIMETYPE, "csv"
