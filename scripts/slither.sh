#!/usr/bin/env bash
# Static analysis of the daimm contracts with slither (through forge and the solcjs bridge).
#
# Exits non-zero if slither finds any High or Medium issue that is not in the triage list below.
# Each triaged finding is keyed by detector, contract and function/variable (not by line, so edits
# elsewhere in a file do not break the triage) and is justified in docs/SECURITY.md ("Slither
# triage"). A new finding, or an old one in a new place, fails the run until someone fixes it or
# triages it here and in SECURITY.md.
#
# Usage: scripts/slither.sh            (from the repository root; `make compile` not needed)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$ROOT/node_modules/.bin:$ROOT/.venv/bin:$PATH"
TMP="$(mktemp -d -t slither.XXXXXX)"
trap 'rm -rf "$TMP"' EXIT
OUT="$TMP/report.json"  # slither refuses to overwrite an existing file

# slither exits non-zero whenever it reports anything; the verdict is ours, below.
slither . \
    --filter-paths "node_modules|contracts/test" \
    --exclude-dependencies \
    --exclude-informational --exclude-low --exclude-optimization \
    --json "$OUT" >"$TMP/log" 2>&1 || true
if [[ ! -s "$OUT" ]]; then
    cat "$TMP/log" >&2
    echo "slither: no report written (see the log above)" >&2
    exit 2
fi

"$ROOT/.venv/bin/python" - "$OUT" <<'PY'
import json
import sys

# (detector, contract, function or variable): see docs/SECURITY.md, "Slither triage".
TRIAGED = {
    ("arbitrary-send-erc20", "RentalEscrow", "buyListed"),        # T1: ERC-721 from the listing's seller
    ("msg-value-in-nonpayable", "RentalEscrow", "_collect"),      # T2: reached only from payable fns
    ("msg-value-in-nonpayable", "CreditEscrow", "_collect"),      # T2
    ("uninitialized-state", "RelayerRegistry", "_relayersOf"),    # T3: written through a storage ref
    ("uninitialized-state", "RentalEscrow", "_terms"),            # T3
    ("uninitialized-state", "CreditEscrow", "_channels"),         # T3
    ("divide-before-multiply", "Payments", "releaseAt"),          # T4: rounding up to the hour, wanted
    ("incorrect-equality", "CreditEscrow", "_collect"),           # T5: `received == 0` is a guard
    ("uninitialized-local", "RentalEscrow", "resolveDispute"),    # T6: zero defaults are meant
    ("uninitialized-local", "Payments", "shares"),                # T6
    ("uninitialized-local", "RentalEscrow", "setSplit"),          # T6
}

with open(sys.argv[1]) as f:
    report = json.load(f)
if not report.get("success", False) and not report.get("results"):
    sys.exit(f"slither failed to run: {report.get('error')}")


def key(result):
    element = result["elements"][0]
    fields = element.get("type_specific_fields", {})
    parent = fields.get("parent", {})
    if element["type"] == "variable" and parent.get("type") == "function":
        # a local variable: key by its function's contract and name
        function = parent
        contract = function.get("type_specific_fields", {}).get("parent", {}).get("name")
        return result["check"], contract, function["name"]
    return result["check"], parent.get("name"), element["name"]


untriaged = []
for result in report.get("results", {}).get("detectors", []):
    if result["impact"] not in ("High", "Medium"):
        continue
    status = "triaged" if key(result) in TRIAGED else "NOT TRIAGED"
    print(f"{status:>12}  {result['impact']:<6} {key(result)}")
    if status != "triaged":
        untriaged.append(result)
for result in untriaged:
    print("\n" + result["description"].strip())
if untriaged:
    sys.exit(f"\nslither: {len(untriaged)} high/medium finding(s) without a triage (docs/SECURITY.md)")
print("slither: no untriaged high or medium finding")
PY
