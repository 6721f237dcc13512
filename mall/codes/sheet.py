"""Printable integrity cards (诚信管理卡) for households without phones: A4 sheets at 300 dpi.

Ten ID-1 sized cards (85.6 x 54 mm) per page, each with the masked name, village, level,
the card QR (error correction Q), the card serial and what to do if it is lost. Chinese text
needs a CJK font (fonts-wqy-microhei or Noto CJK); without one the sheet still renders, with
the ASCII parts only, and a warning is logged.
"""

from __future__ import annotations

import glob
import io
from dataclasses import dataclass
from functools import lru_cache

import structlog
from flask import current_app, has_app_context
from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import select
from sqlalchemy.orm import Session

from mall.clock import utcnow
from mall.codes import qr
from mall.codes.services import (
    active_card,
    card_code,
    effective_level,
    format_serial,
    issue_card,
)
from mall.regions.models import Region
from mall.subjects.models import CreditSubject

log = structlog.get_logger(__name__)

DPI = qr.PRINT_DPI
PAGE_W, PAGE_H = 2480, 3508  # A4 at 300 dpi
CARD_W, CARD_H = 1011, 638  # 85.6 x 54 mm at 300 dpi
COLUMNS, ROWS = 2, 5
CARDS_PER_PAGE = COLUMNS * ROWS
LOST_NOTICE = ("遗失请及时挂失", "付款须输入6位密码，勿告诉他人")

CJK_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)
_CJK_GLOBS = ("/usr/share/fonts/**/*wqy*.tt[cf]", "/usr/share/fonts/**/*CJK*.tt[cf]")


@dataclass(frozen=True)
class CardFace:
    code: str
    serial: str
    name_masked: str
    village: str
    level: str | None


@lru_cache(maxsize=4)
def _find_cjk_font(configured: str | None) -> str | None:
    candidates = [configured] if configured else []
    candidates += list(CJK_FONT_CANDIDATES)
    for pattern in _CJK_GLOBS:
        candidates += sorted(glob.glob(pattern, recursive=True))
    for path in candidates:
        try:
            ImageFont.truetype(path, 20)
        except OSError:
            continue
        return path
    return None


def find_cjk_font() -> str | None:
    """A font file that can draw Chinese: CARD_FONT_PATH if set, else a known system font."""
    configured = current_app.config.get("CARD_FONT_PATH") if has_app_context() else None
    return _find_cjk_font(configured)


class _Fonts:
    def __init__(self, cjk_path: str | None) -> None:
        self.cjk = cjk_path is not None
        if cjk_path is None:
            log.warning("card_sheet_no_cjk_font", hint="apt-get install fonts-wqy-microhei")

        def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
            if cjk_path is not None:
                return ImageFont.truetype(cjk_path, size)
            return ImageFont.load_default(size)

        self.title, self.body, self.serial, self.small = font(58), font(44), font(46), font(30)


def _fit(draw: ImageDraw.ImageDraw, text: str, font: object, width: int) -> str:
    """Shorten `text` with an ellipsis until it fits `width` pixels."""
    if draw.textlength(text, font=font) <= width:  # type: ignore[arg-type]
        return text
    while text and draw.textlength(text + "…", font=font) > width:  # type: ignore[arg-type]
        text = text[:-1]
    return text + "…"


def _draw_card(page: Image.Image, x: int, y: int, face: CardFace, fonts: _Fonts) -> None:
    draw = ImageDraw.Draw(page)
    # Cut guide in light grey, then the QR on the left, centred vertically.
    draw.rounded_rectangle((x, y, x + CARD_W - 1, y + CARD_H - 1), radius=36, outline=160, width=3)
    code_img = qr.qr_image(face.code, "print")
    qr_side = min(code_img.width, CARD_H - 60)
    if code_img.width != qr_side:
        code_img = code_img.resize((qr_side, qr_side), Image.Resampling.NEAREST)
    page.paste(code_img.convert("L"), (x + 24, y + (CARD_H - qr_side) // 2))
    tx = x + 24 + qr_side + 16
    width = x + CARD_W - 30 - tx
    ty = y + 46
    level = face.level or "-"
    if fonts.cjk:
        lines = [
            (fonts.title, "诚信管理卡", 80),
            (fonts.body, _fit(draw, face.name_masked, fonts.body, width), 64),
            (fonts.body, _fit(draw, face.village, fonts.body, width), 64),
            (fonts.body, f"信用等级 {level}", 78),
        ]
    else:
        lines = [(fonts.title, "CREDIT CARD", 80), (fonts.body, f"Level {level}", 78)]
    for font, text, step in lines:
        draw.text((tx, ty), text, font=font, fill=0)
        ty += step
    draw.text((tx, ty), format_serial(face.serial), font=fonts.serial, fill=0)
    ty += 74
    if fonts.cjk:
        for text in LOST_NOTICE:
            draw.text((tx, ty), _fit(draw, text, fonts.small, width), font=fonts.small, fill=0)
            ty += 40
    else:
        draw.text((tx, ty), "Report loss at once", font=fonts.small, fill=0)


def render_sheet_pages(faces: list[CardFace], *, heading: str = "") -> list[Image.Image]:
    """One greyscale A4 page (300 dpi) per ten cards."""
    fonts = _Fonts(find_cjk_font())
    margin_x = (PAGE_W - COLUMNS * CARD_W) // 2
    margin_y = (PAGE_H - ROWS * CARD_H) // 2
    pages: list[Image.Image] = []
    chunks = [faces[i : i + CARDS_PER_PAGE] for i in range(0, len(faces), CARDS_PER_PAGE)]
    for number, chunk in enumerate(chunks, start=1):
        page = Image.new("L", (PAGE_W, PAGE_H), 255)
        label = f"{heading}  {number}/{len(chunks)}" if fonts.cjk else f"{number}/{len(chunks)}"
        ImageDraw.Draw(page).text((margin_x, 60), label.strip(), font=fonts.small, fill=0)
        for i, face in enumerate(chunk):
            col, row = i % COLUMNS, i // COLUMNS
            _draw_card(page, margin_x + col * CARD_W, margin_y + row * CARD_H, face, fonts)
        pages.append(page)
    return pages


def sheet_pdf(pages: list[Image.Image]) -> bytes:
    buf = io.BytesIO()
    pages[0].save(buf, "PDF", resolution=DPI, save_all=True, append_images=pages[1:])
    return buf.getvalue()


def sheet_png(page: Image.Image) -> bytes:
    buf = io.BytesIO()
    page.save(buf, "PNG", dpi=(DPI, DPI), optimize=False)
    return buf.getvalue()


def village_card_faces(
    session: Session, village: Region, *, issue_missing: bool = False
) -> list[CardFace]:
    """The cards of the village's active households, in enrolment order. With
    `issue_missing`, households without an active card get one (flushed; caller commits)."""
    faces: list[CardFace] = []
    households = session.scalars(
        select(CreditSubject)
        .where(CreditSubject.village_id == village.id, CreditSubject.status == "active")
        .order_by(CreditSubject.id)
    )
    for subject in households:
        card = active_card(session, subject)
        if card is None:
            if not issue_missing:
                continue
            card = issue_card(session, subject)
        faces.append(
            CardFace(
                code=card_code(session, card),
                serial=card.serial,
                name_masked=subject.name_masked,
                village=village.name,
                level=effective_level(subject, utcnow()),
            )
        )
    return faces
