"""Write the compiled contract types daimm ships to src/daimm/contracts/<Name>.json.

Run after `ape compile` (`make contract-types` does both): reads the project's build manifest
in `.build/` and writes one ape ContractType JSON per shipped contract, keeping the fields in
`daimm.contracts.EXPORTED_FIELDS`. The files are committed; tests/unit/market/test_contract_types.py
checks they equal a fresh compilation.

Usage: python scripts/export_contract_types.py [--build .build] [--out DIR] [--check]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from daimm.contracts import EXPORTED_FIELDS, SHIPPED  # noqa: E402


def exported(contract_type: dict[str, Any]) -> dict[str, Any]:
    """The shipped projection of one ContractType (as JSON data)."""
    return {
        key: contract_type[key] for key in EXPORTED_FIELDS if contract_type.get(key) is not None
    }


def render(contract_type: dict[str, Any]) -> str:
    """Deterministic JSON text of a shipped contract type."""
    return json.dumps(exported(contract_type), indent=1, sort_keys=True) + "\n"


def compiled_types(build: Path) -> dict[str, dict[str, Any]]:
    """Contract types of the project's build manifest, by name."""
    manifest = build / "__local__.json"
    if not manifest.is_file():
        raise SystemExit(f"{manifest} not found: run `ape compile` (or `make compile`) first")
    types = json.loads(manifest.read_text()).get("contractTypes") or {}
    missing = [name for name in SHIPPED if name not in types]
    if missing:
        raise SystemExit(f"not compiled yet: {', '.join(missing)}; run `ape compile`")
    return {name: types[name] for name in SHIPPED}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", type=Path, default=ROOT / ".build")
    parser.add_argument("--out", type=Path, default=ROOT / "src" / "daimm" / "contracts")
    parser.add_argument("--check", action="store_true", help="fail if a shipped file is stale")
    args = parser.parse_args()

    stale = []
    for name, contract_type in compiled_types(args.build).items():
        target = args.out / f"{name}.json"
        text = render(contract_type)
        if target.is_file() and target.read_text() == text:
            continue
        stale.append(name)
        if not args.check:
            target.write_text(text)
            print(f"wrote {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}")
    if args.check and stale:
        print(f"stale contract types: {', '.join(stale)}; run scripts/export_contract_types.py")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
