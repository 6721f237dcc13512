"""Credit-code benchmark: CPU time per sign and verify, and per QR image, cold and cached.

    .venv/bin/python bench/codes_bench.py [--iterations 5000]

Runs against a scratch SQLite database built by the migrations. CPU time is
time.process_time() over many iterations, divided by the count.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import jwt
from flask_migrate import upgrade

from mall.codes import keys, qr, sheet
from mall.codes.services import card_code, issue_card, sign_dynamic_code, verify_code
from mall.config import Config
from mall.extensions import db
from mall.regions.services import create_region
from mall.subjects.services import create_household
from mall.web.app import create_app


def per_call_ms(fn: Callable[[int], object], n: int) -> float:
    fn(0)  # warm up
    start = time.process_time()
    for i in range(n):
        fn(i)
    return (time.process_time() - start) / n * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=5000)
    n = parser.parse_args().iterations
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        app = create_app(Config({"DATABASE_URL": url, "LOG_LEVEL": "WARNING"}))
        with app.app_context():
            upgrade(revision="heads")
            run(n)


def run(n: int) -> None:
    session = db.session()
    county = create_region(session, kind="county", code="B", name="基准县")
    town = create_region(session, kind="township", code="BT", name="基准镇", parent=county)
    village = create_region(session, kind="village", code="BTV", name="基准村", parent=town)
    subject = create_household(session, village=village, head_name="张建华", phone="13800138000")
    subject.level_code = "AAA"
    session.commit()

    issued = sign_dynamic_code(session, subject)  # creates the first key
    session.commit()
    code = issued.code
    kid = jwt.get_unverified_header(code)["kid"]
    public = keys.loaded_keys(session)[kid].public
    results: list[tuple[str, float]] = []

    results.append(
        (
            "sign dynamic code (service)",
            per_call_ms(lambda _: sign_dynamic_code(session, subject), n),
        )
    )
    results.append(
        (
            "verify signature + claims (PyJWT EdDSA)",
            per_call_ms(lambda _: jwt.decode(code, public, algorithms=["EdDSA"]), n),
        )
    )
    results.append(
        (
            "verify code (service, incl. household lookup)",
            per_call_ms(lambda _: verify_code(session, code), n),
        )
    )

    png_n = max(50, n // 20)
    fresh = [sign_dynamic_code(session, subject).code for _ in range(png_n + 1)]
    qr.clear_cache()
    results.append(("PNG screen, cold", per_call_ms(lambda i: qr.render_png(fresh[i]), png_n)))
    results.append(("PNG screen, cached", per_call_ms(lambda _: qr.render_png(fresh[0]), n)))
    qr.clear_cache()
    results.append(("SVG screen, cold", per_call_ms(lambda i: qr.render_svg(fresh[i]), png_n)))
    card = issue_card(session, subject)
    printed = card_code(session, card)
    results.append(
        (
            "PNG print (card, Q, mask chosen), cold",
            per_call_ms(lambda _: (qr.clear_cache(), qr.render_png(printed, "print")), 20),
        )
    )
    faces = [sheet.CardFace(printed, card.serial, subject.name_masked, village.name, "AAA")] * 10
    results.append(
        (
            "A4 card sheet, 10 cards (one page)",
            per_call_ms(lambda _: sheet.render_sheet_pages(faces), 3),
        )
    )
    session.rollback()

    version = (len(qr.qr_matrix(code)) - 2 * qr.BORDER - 17) // 4
    print(f"code length: {len(code)} characters; screen QR version {version} (M)")
    for label, ms in results:
        print(f"{label:<48} {ms * 1000:10.1f} µs CPU")


if __name__ == "__main__":
    main()
