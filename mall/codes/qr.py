"""QR images of credit codes: PNG and SVG, for a phone screen or for print.

- screen: error correction M (a clean, lit screen needs little redundancy; a lower version
  means bigger modules for a cheap phone camera), about 360 px, and a fixed mask pattern:
  choosing the "best" mask costs ~15 ms of pure Python per code and any mask decodes.
- print: error correction Q (cards get scratched, folded and dirty), 300 dpi, modules of
  0.42 mm (5 px), the mask chosen by the standard's penalty rules (rendered once, cached).
Both keep the standard 4-module quiet zone. Rendered images are cached by code string.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import qrcode
import qrcode.constants
from PIL import Image

Purpose = Literal["screen", "print"]
PRINT_DPI = 300


@dataclass(frozen=True)
class QrStyle:
    error_correction: int
    mask_pattern: int | None
    target_px: int  # screen: the image side to aim at
    module_px: int  # print: the size of one module at PRINT_DPI


STYLES: dict[str, QrStyle] = {
    "screen": QrStyle(qrcode.constants.ERROR_CORRECT_M, 0, 360, 0),
    "print": QrStyle(qrcode.constants.ERROR_CORRECT_Q, None, 0, 5),
}
BORDER = 4


def qr_matrix(code: str, purpose: Purpose = "screen") -> list[list[bool]]:
    """The modules, quiet zone included; True is dark."""
    style = STYLES[purpose]
    qr = qrcode.QRCode(
        error_correction=style.error_correction, border=BORDER, mask_pattern=style.mask_pattern
    )
    qr.add_data(code.encode("ascii"))  # codes are ASCII: byte mode, no ECI header
    qr.make(fit=True)
    return qr.get_matrix()


def module_px(modules: int, purpose: Purpose) -> int:
    style = STYLES[purpose]
    if purpose == "print":
        return style.module_px
    return max(3, style.target_px // modules)


def qr_image(code: str, purpose: Purpose = "screen", px: int | None = None) -> Image.Image:
    """A 1-bit PIL image; `px` overrides the size of a module in pixels."""
    matrix = qr_matrix(code, purpose)
    n = len(matrix)
    box = px or module_px(n, purpose)
    raw = bytes(0 if cell else 255 for row in matrix for cell in row)
    small = Image.frombytes("L", (n, n), raw).convert("1", dither=Image.Dither.NONE)
    return small.resize((n * box, n * box), Image.Resampling.NEAREST)


@lru_cache(maxsize=512)
def render_png(code: str, purpose: Purpose = "screen") -> bytes:
    """PNG bytes (cached per code and purpose; codes are immutable strings)."""
    img = qr_image(code, purpose)
    buf = io.BytesIO()
    if purpose == "print":
        img.save(buf, "PNG", dpi=(PRINT_DPI, PRINT_DPI))
    else:
        img.save(buf, "PNG")
    return buf.getvalue()


@lru_cache(maxsize=512)
def render_svg(code: str, purpose: Purpose = "screen") -> str:
    """An SVG document: one path of horizontal runs, crisp edges, white background."""
    matrix = qr_matrix(code, purpose)
    n = len(matrix)
    runs: list[str] = []
    for y, row in enumerate(matrix):
        x = 0
        while x < n:
            if row[x]:
                start = x
                while x < n and row[x]:
                    x += 1
                runs.append(f"M{start} {y}h{x - start}v1h{start - x}z")
            else:
                x += 1
    if purpose == "print":
        side = f"{n * STYLES['print'].module_px * 25.4 / PRINT_DPI:.1f}mm"
    else:
        side = str(n * module_px(n, "screen"))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" viewBox="0 0 {n} {n}" '
        f'width="{side}" height="{side}" shape-rendering="crispEdges">'
        f'<rect width="{n}" height="{n}" fill="#fff"/>'
        f'<path fill="#000" d="{"".join(runs)}"/></svg>'
    )


def clear_cache() -> None:
    render_png.cache_clear()
    render_svg.cache_clear()
