"""The credit-village plaque certificate (信用村牌匾): an A4 landscape PNG at 300 dpi, drawn
with Pillow in the CJK font the card sheets use (mall.codes.sheet.find_cjk_font). Without a
CJK font it still renders, in English, and logs a warning there."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date

from PIL import Image, ImageDraw, ImageFont
from sqlalchemy.orm import Session

from mall.codes.sheet import find_cjk_font
from mall.errors import Conflict
from mall.regions.models import Region
from mall.regions.services import ancestry
from mall.villages.models import CreditVillageApplication

DPI = 300
WIDTH, HEIGHT = 3508, 2480  # A4 landscape at 300 dpi
RED = (176, 24, 24)
GOLD = (196, 150, 60)
INK = (40, 30, 30)
PLAQUE_STATUSES = ("awarded", "expired", "superseded")


@dataclass(frozen=True)
class PlaqueFace:
    grade: str
    county: str
    township: str
    village: str
    valid_from: date
    valid_until: date
    decision_no: str
    serial: str


def face_for(session: Session, app: CreditVillageApplication) -> PlaqueFace:
    if app.status not in PLAQUE_STATUSES or app.valid_from is None or app.valid_until is None:
        raise Conflict("invalid_state", details={"status": app.status})
    village = session.get(Region, app.village_id)
    assert village is not None
    names = {r.kind: r.name for r in ancestry(session, village)}
    return PlaqueFace(
        grade=app.grade_awarded or app.grade_applied,
        county=names.get("county", ""),
        township=names.get("township", ""),
        village=village.name,
        valid_from=app.valid_from,
        valid_until=app.valid_until,
        decision_no=app.decision_no or "",
        serial=app.plaque_serial or "",
    )


def _cn_date(d: date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def _font(path: str | None, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.truetype(path, size) if path else ImageFont.load_default(size)


def _centred(
    draw: ImageDraw.ImageDraw, y: int, text: str, font: object, fill: tuple[int, ...]
) -> None:
    width = draw.textlength(text, font=font)  # type: ignore[arg-type]
    draw.text(((WIDTH - width) / 2, y), text, font=font, fill=fill)  # type: ignore[arg-type]


def render_plaque(face: PlaqueFace) -> bytes:
    """The certificate as PNG bytes (3508 × 2480 px, 300 dpi)."""
    path = find_cjk_font()
    page = Image.new("RGB", (WIDTH, HEIGHT), (255, 251, 240))
    draw = ImageDraw.Draw(page)
    for inset, width, colour in ((60, 24, RED), (110, 6, GOLD), (130, 3, RED)):
        draw.rectangle((inset, inset, WIDTH - inset, HEIGHT - inset), outline=colour, width=width)
    if path is not None:
        lines = [
            (330, _font(path, 120), f"{face.county}{face.township}", INK),
            (520, _font(path, 340), f"{face.grade}级信用村", RED),
            (960, _font(path, 150), face.village, INK),
            (1230, _font(path, 70), "经社会公示无异议,予以认定", INK),
            (1360, _font(path, 70), f"认定文号:{face.decision_no}", INK),
            (
                1490,
                _font(path, 70),
                f"有效期:{_cn_date(face.valid_from)}至{_cn_date(face.valid_until)}",
                INK,
            ),
            (1860, _font(path, 80), f"{face.county}党建引领信用村建设工作联席会议", INK),
            (1990, _font(path, 70), _cn_date(face.valid_from), INK),
            (2200, _font(path, 50), f"牌匾编号 {face.serial}", GOLD),
        ]
    else:
        lines = [
            (520, _font(None, 300), f"{face.grade} CREDIT VILLAGE", RED),
            (1230, _font(None, 70), f"Decision {face.decision_no}", INK),
            (1490, _font(None, 70), f"Valid {face.valid_from} to {face.valid_until}", INK),
            (2200, _font(None, 50), f"Plaque {face.serial}", GOLD),
        ]
    for y, font, text, colour in lines:
        _centred(draw, y, text, font, colour)
    buf = io.BytesIO()
    page.save(buf, format="PNG", dpi=(DPI, DPI), optimize=False)
    return buf.getvalue()


def plaque_png(session: Session, app: CreditVillageApplication) -> bytes:
    return render_plaque(face_for(session, app))
