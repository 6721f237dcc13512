"""QR images decode back to the exact code with a real decoder (zxing-cpp); card sheets."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET

import pytest
import zxingcpp
from PIL import Image
from sqlalchemy.orm import Session

from mall.codes import qr, sheet
from mall.codes.services import card_code, issue_card, sign_dynamic_code
from mall.subjects.models import CreditSubject
from tests.codes.conftest import NOW
from tests.factories import make_county, make_household

SVG_NS = "{http://www.w3.org/2000/svg}"


def _decode(img: Image.Image) -> list[zxingcpp.Result]:
    return zxingcpp.read_barcodes(img, formats=zxingcpp.BarcodeFormat.QRCode)


@pytest.fixture
def dynamic_code(session: Session, household: CreditSubject) -> str:
    return sign_dynamic_code(session, household, now=NOW).code


@pytest.fixture
def printed_code(session: Session, household: CreditSubject) -> str:
    return card_code(session, issue_card(session, household, now=NOW))


def test_screen_png_decodes_to_the_exact_code(dynamic_code: str) -> None:
    png = qr.render_png(dynamic_code, "screen")
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG"
    assert 250 <= img.width <= 420
    assert img.width == img.height
    results = _decode(img)
    assert [r.text for r in results] == [dynamic_code]
    assert results[0].ec_level == "M"
    assert len(png) < 4000


def test_print_png_decodes_and_uses_stronger_error_correction(printed_code: str) -> None:
    img = Image.open(io.BytesIO(qr.render_png(printed_code, "print")))
    assert img.info["dpi"] == pytest.approx((300, 300), abs=0.5)
    side_mm = img.width / 300 * 25.4
    assert 25 <= side_mm <= 45  # fits a 54 mm card, large enough for a phone camera
    results = _decode(img)
    assert [r.text for r in results] == [printed_code]
    assert results[0].ec_level == "Q"


def test_a_phone_photo_quality_image_still_decodes(dynamic_code: str) -> None:
    """Downscaled and blurred a little, as a cashier's camera sees a phone screen."""
    from PIL import ImageFilter

    img = Image.open(io.BytesIO(qr.render_png(dynamic_code))).convert("L")
    img = img.resize((img.width * 3 // 4,) * 2, Image.Resampling.BILINEAR)
    img = img.filter(ImageFilter.GaussianBlur(1))
    assert [r.text for r in _decode(img)] == [dynamic_code]


def _svg_matrix(svg: str) -> list[list[bool]]:
    root = ET.fromstring(svg)  # noqa: S314 (our own output)
    assert root.tag == f"{SVG_NS}svg"
    n = int(root.attrib["viewBox"].split()[2])
    path = root.find(f"{SVG_NS}path")
    assert path is not None
    matrix = [[False] * n for _ in range(n)]
    for x, y, w in re.findall(r"M(\d+) (\d+)h(\d+)v1h-\d+z", path.attrib["d"]):
        for i in range(int(w)):
            matrix[int(y)][int(x) + i] = True
    return matrix


@pytest.mark.parametrize("purpose", ["screen", "print"])
def test_svg_is_well_formed_and_draws_the_same_modules(dynamic_code: str, purpose: str) -> None:
    svg = qr.render_svg(dynamic_code, purpose)  # type: ignore[arg-type]
    matrix = _svg_matrix(svg)
    assert matrix == qr.qr_matrix(dynamic_code, purpose)  # type: ignore[arg-type]
    # Rasterise the SVG's modules and decode them: the drawing is the code.
    n = len(matrix)
    raw = bytes(0 if dark else 255 for row in matrix for dark in row)
    img = Image.frombytes("L", (n, n), raw).resize((n * 4, n * 4), Image.Resampling.NEAREST)
    assert [r.text for r in _decode(img)] == [dynamic_code]


def test_rendered_images_are_cached(dynamic_code: str) -> None:
    qr.clear_cache()
    first = qr.render_png(dynamic_code)
    assert qr.render_png(dynamic_code) is first
    assert qr.render_png.cache_info().hits == 1
    assert qr.render_svg(dynamic_code) is qr.render_svg(dynamic_code)


# ------------------------------------------------------------------ card sheets


def _faces(session: Session, count: int) -> list[sheet.CardFace]:
    county = make_county(session, townships=1, villages_per_township=1)
    village = county.villages[0]
    for i in range(count):
        subject = make_household(session, village, name=f"张建{chr(0x4E00 + i)}")
        subject.level_code = "AA"
    session.flush()
    return sheet.village_card_faces(session, village, issue_missing=True)


def test_village_sheet_renders_and_every_card_qr_decodes(session: Session) -> None:
    faces = _faces(session, 12)
    assert len(faces) == 12
    assert len({f.serial for f in faces}) == 12
    assert all(f.name_masked.startswith("张*") and f.level == "AA" for f in faces)
    pages = sheet.render_sheet_pages(faces, heading=faces[0].village)
    assert len(pages) == 2
    assert pages[0].size == (2480, 3508)
    found = {r.text for page in pages for r in _decode(page)}
    assert found == {f.code for f in faces}
    pdf = sheet.sheet_pdf(pages)
    assert pdf.startswith(b"%PDF")
    png = Image.open(io.BytesIO(sheet.sheet_png(pages[0])))
    assert png.info["dpi"] == pytest.approx((300, 300), abs=0.5)


def test_sheet_uses_a_cjk_font_when_installed() -> None:
    if sheet.find_cjk_font() is None:
        pytest.skip("no CJK font installed (apt-get install fonts-wqy-microhei)")
    from PIL import ImageFont

    font = ImageFont.truetype(sheet.find_cjk_font(), 40)  # type: ignore[arg-type]
    # A real glyph, not the empty box of a missing character.
    assert font.getbbox("遗")[2] > 20


def test_sheet_without_a_cjk_font_still_renders(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    faces = _faces(session, 3)
    monkeypatch.setattr(sheet, "find_cjk_font", lambda: None)
    pages = sheet.render_sheet_pages(faces)
    assert len(pages) == 1
    assert {r.text for r in _decode(pages[0])} == {f.code for f in faces}


def test_sheet_skips_households_without_a_card_unless_asked(session: Session) -> None:
    county = make_county(session, townships=1, villages_per_township=1)
    village = county.villages[0]
    with_card = make_household(session, village)
    make_household(session, village, name="李四")
    issue_card(session, with_card)
    assert len(sheet.village_card_faces(session, village)) == 1
    assert len(sheet.village_card_faces(session, village, issue_missing=True)) == 2
