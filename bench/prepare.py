"""Fill an empty, migrated database with the demo county at a larger scale, for bench/run.py.

    DATABASE_URL=... python bench/prepare.py OUT_DIR --households-per-village N

The demo builder (mall.demo.builder.build) with N households per village (6 villages), so the
payments benchmark has enough distinct households with integrity money. Writes
OUT_DIR/manifest.json (the demo manifest) and OUT_DIR/codes.json: for every rated household
one long-lived dynamic code, and the terminal ids of its township's integrity partners.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from sqlalchemy import select

from mall.codes.services import sign_dynamic_code
from mall.demo.builder import build
from mall.extensions import db
from mall.regions.models import Region
from mall.subjects.models import CreditSubject
from mall.web.app import create_app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--households-per-village", type=int, default=50)
    parser.add_argument("--code-lifetime", type=int, default=3600)
    args = parser.parse_args()
    app = create_app()
    with app.app_context():
        session = db.session()
        started = time.perf_counter()
        manifest = build(session, households_per_village=args.households_per_village)
        session.commit()
        built = time.perf_counter() - started
        manifest.write(str(args.out / "manifest.json"))
        towns = {p["partner_id"]: p["township"] for p in manifest.partners}
        tills: dict[str, list[dict[str, str]]] = {}
        for t in manifest.terminals:
            if t["partner_category"] in ("supermarket", "wholesale"):
                tills.setdefault(towns[t["partner_id"]], []).append(
                    {"terminal_id": t["terminal_id"], "secret": t["secret"]}
                )
        subjects = session.scalars(
            select(CreditSubject).where(CreditSubject.level_code.is_not(None))
        ).all()
        town_names = dict(
            session.execute(select(Region.id, Region.name).where(Region.kind == "township")).all()
        )
        codes = []
        for subject in subjects:
            town = town_names.get(subject.township_id)
            if town is None:
                continue
            issued = sign_dynamic_code(session, subject, lifetime=args.code_lifetime)
            codes.append({"ref": subject.ref, "code": issued.code, "township": town})
        session.commit()
        (args.out / "codes.json").write_text(
            json.dumps({"codes": codes, "tills": tills}, ensure_ascii=False), "utf-8"
        )
    print(
        f"prepared {len(manifest.households)} households ({len(codes)} rated, with codes) "
        f"in {built:.1f} s",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
