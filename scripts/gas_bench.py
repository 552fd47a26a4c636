"""Gas benchmark of the core marketplace: `ape run gas_bench` writes bench/results/gas.json.

Every action is paid in AIMT with an infinite approval and measured as full transaction gas
(`gas_used` of its receipt, 21,000 base and calldata included); `has_access` is an
`eth_estimateGas` of the view call. The table and the EVM floors are in bench/README.md (## Gas).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ape import accounts, chain, project

from daimm.market.deploy import deploy_all

log = logging.getLogger("daimm.bench.gas")

RESULTS = Path(__file__).resolve().parent.parent / "bench" / "results" / "gas.json"
KEYS = (
    "deploy_total",
    "publish_model",
    "publish_version",
    "set_offer",
    "rent_first",
    "rent_extend",
    "buy_perpetual",
    "resell_licence",
    "withdraw",
    "dispute_open",
    "dispute_resolve",
    "has_access",
)
# Realistic CIDv1 strings (59 characters, like `ipfs add --cid-version 1`).
WEIGHTS_CID = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
METADATA_CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
WINDOW = 3 * 24 * 3600
PRICE = 10 * 10**18
MAX_UINT = 2**256 - 1


def measure() -> dict[str, int]:
    """Deploy on the connected local chain, perform each action once and return its gas."""
    deployer, treasury, arbiter, creator, renter, buyer = accounts.test_accounts[:6]
    core = deploy_all(
        project, deployer, treasury=treasury, arbiter=arbiter, fee_bps=250, dispute_window=WINDOW
    )
    token, registry, licences, escrow = core.token, core.registry, core.licences, core.escrow
    gas: dict[str, int] = {"deploy_total": core.gas_used}
    for account in (renter, buyer):
        token.transfer(account, 1_000 * PRICE, sender=treasury)
        token.approve(escrow, MAX_UINT, sender=account)
    # Warm-up: the escrow already holds some AIMT (as it would in steady state).
    warm = registry.publishModel(WEIGHTS_CID, METADATA_CID, 500, sender=creator)
    warm_id = warm.events.filter(registry.ModelPublished)[0].modelId

    tx = registry.publishModel(WEIGHTS_CID, METADATA_CID, 500, sender=creator)
    gas["publish_model"] = tx.gas_used
    model_id = tx.events.filter(registry.ModelPublished)[0].modelId
    gas["publish_version"] = registry.publishVersion(
        model_id, WEIGHTS_CID, METADATA_CID, sender=creator
    ).gas_used
    offer = (token.address, PRICE, 24 * 3600, 1, 365, True, 50 * PRICE, 0)
    escrow.setOffer(warm_id, offer, sender=creator)
    escrow.rent(warm_id, 1, PRICE, sender=buyer)
    gas["set_offer"] = escrow.setOffer(model_id, offer, sender=creator).gas_used

    gas["rent_first"] = escrow.rent(model_id, 1, PRICE, sender=renter).gas_used
    gas["rent_extend"] = escrow.rent(model_id, 1, PRICE, sender=renter).gas_used
    tx = escrow.buy(model_id, 50 * PRICE, sender=buyer)
    gas["buy_perpetual"] = tx.gas_used
    perpetual = tx.events.filter(escrow.Bought)[0].licenceId

    licences.approve(escrow, perpetual, sender=buyer)
    escrow.list(perpetual, token.address, 20 * PRICE, sender=buyer)
    gas["resell_licence"] = escrow.buyListed(perpetual, 20 * PRICE, sender=renter).gas_used

    rental = licences.rentalOf(model_id, renter)
    tx = escrow.openDispute(rental, sender=renter)
    gas["dispute_open"] = tx.gas_used
    dispute_id = tx.events.filter(escrow.DisputeOpened)[0].disputeId
    gas["dispute_resolve"] = escrow.resolveDispute(dispute_id, 1, 0, sender=arbiter).gas_used

    release_at = escrow.currentReleaseAt()
    chain.mine(timestamp=release_at + 1)
    payee_set = escrow.payeeSetOf(model_id)
    escrow.settle(payee_set, token.address, release_at, sender=creator)
    gas["withdraw"] = escrow.withdraw(token.address, sender=creator).gas_used

    gas["has_access"] = chain.provider.web3.eth.estimate_gas(
        {
            "to": licences.address,
            "data": licences.hasAccess.encode_input(model_id, renter.address).hex(),
        }
    )
    return {key: int(gas[key]) for key in KEYS}


def main() -> None:
    """Entry point of `ape run gas_bench`."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    gas = measure()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(gas, indent=2) + "\n")
    for key, value in gas.items():
        log.info("%-16s %9d", key, value)
    log.info("wrote %s", RESULTS)
