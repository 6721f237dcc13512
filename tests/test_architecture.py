"""The layers of pyproject.toml's import contracts cover every package of mall.

`lint-imports` (run by scripts/test.sh) checks the contracts; this test checks that each
package under mall/ is named in exactly one place of them, so a new package is never
outside every rule: the composition root, a channel, the HTTP plumbing, or the domain.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _contracts() -> dict[str, dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return {c["id"]: c for c in config["tool"]["importlinter"]["contracts"]}


def _mall_children() -> set[str]:
    out = set()
    for path in (ROOT / "mall").iterdir():
        if path.name.startswith(("_", ".")):
            continue
        if path.suffix == ".py":
            out.add(f"mall.{path.stem}")
        elif path.is_dir() and (path / "__init__.py").exists():
            out.add(f"mall.{path.name}")
    return out


def test_every_mall_package_is_in_one_layer() -> None:
    contracts = _contracts()
    layered = {
        name.strip()
        for layer in contracts["layers"]["layers"]  # type: ignore[attr-defined]
        for name in str(layer).split("|")
        if name.strip().startswith("mall.")
    }
    domain = set(contracts["domain"]["source_modules"])  # type: ignore[arg-type]
    assert layered.isdisjoint(domain)
    assert _mall_children() == layered | domain, (
        "a package of mall is in no layer: add it to the domain's source_modules in "
        "pyproject.toml, or to a layer"
    )


def test_the_domain_may_import_none_of_the_layers_above_it() -> None:
    contracts = _contracts()
    forbidden = set(contracts["domain"]["forbidden_modules"])  # type: ignore[arg-type]
    assert forbidden == {"mall.web", "mall.api", "mall.farmer", "mall.http", "admin", "pos_adapter"}
