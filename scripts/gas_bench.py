"""Gas benchmark of the core marketplace: `ape run gas_bench` writes bench/results/gas.json.

Every action is paid in AIMT with an infinite approval and measured as full transaction gas
(`gas_used` of its receipt, 21,000 base and calldata included); `has_access` is an
`eth_estimateGas` of the view call. The table and the EVM floors are in bench/README.md (## Gas).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ape import accounts, chain, project

from daimm import eip712
from daimm.market.deploy import deploy_all
from daimm.market.deploy_extensions import deploy_extensions

log = logging.getLogger("daimm.bench.gas")

RESULTS = Path(__file__).resolve().parent.parent / "bench" / "results" / "gas.json"
TRACES = RESULTS.with_name("gas_trace.json")
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
    "credit_deposit",
    "voucher_redeem",
    "voucher_redeem_batched",
)
BATCH = 10
# Realistic CIDv1 strings (59 characters, like `ipfs add --cid-version 1`).
WEIGHTS_CID = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
METADATA_CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
WINDOW = 3 * 24 * 3600
PRICE = 10 * 10**18
MAX_UINT = 2**256 - 1
PRICE_PER_CALL = 10**16
ENVELOPE_CID = METADATA_CID  # any CIDv1 of that length: the registry only stores it


#: The transactions whose gas is broken down by opcode on anvil (see :func:`breakdown`).
_kept: dict[str, Any] = {}


def _keep(key: str, tx: Any) -> int:
    _kept[key] = tx
    return int(tx.gas_used)


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

    gas["rent_first"] = _keep("rent_first", escrow.rent(model_id, 1, PRICE, sender=renter))
    gas["rent_extend"] = _keep("rent_extend", escrow.rent(model_id, 1, PRICE, sender=renter))
    tx = escrow.buy(model_id, 50 * PRICE, sender=buyer)
    gas["buy_perpetual"] = _keep("buy_perpetual", tx)
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
    gas.update(_pay_per_use(core, deployer, creator, renter))
    return {key: int(gas[key]) for key in KEYS}


def _pay_per_use(core, deployer, creator, payer) -> dict[str, int]:
    """A pay-per-use channel in AIMT: the first deposit, then a voucher redeemed by the relayer.

    Steady state as above: a warm-up redemption on the channel in the same hour already opened the
    model's settlement bucket, so ``voucher_redeem`` is the cost of a relayer's routine claim.
    """
    relayer, operator = accounts.test_accounts[6:8]
    ext = deploy_extensions(project, deployer, core)
    credit, relayers = ext.credit_escrow, ext.relayer_registry
    relayers.approveOperator(operator, sender=relayer)
    relayers.register(relayer, b"\x11" * 32, "https://relayer.example", sender=operator)
    tx = core.registry.publishModel(WEIGHTS_CID, METADATA_CID, 500, sender=creator)
    model_id = tx.events.filter(core.registry.ModelPublished)[0].modelId
    offer = (core.token.address, PRICE, 24 * 3600, 1, 365, True, 50 * PRICE, PRICE_PER_CALL)
    core.escrow.setOffer(model_id, offer, sender=creator)
    relayers.authorise(model_id, relayer, ENVELOPE_CID, sender=creator)
    for account in (payer, accounts.test_accounts[5]):
        core.token.approve(credit, MAX_UINT, sender=account)
    # Warm-up: another payer's channel, so the CreditEscrow already holds AIMT (steady state).
    credit.deposit(model_id, relayer, PRICE_PER_CALL, sender=accounts.test_accounts[5])
    tx = credit.deposit(model_id, relayer, 100 * PRICE_PER_CALL, sender=payer)
    gas = {"credit_deposit": _keep("credit_deposit", tx)}

    def voucher_for(calls: int) -> eip712.Voucher:
        return eip712.Voucher(
            model_id=model_id,
            relayer=relayer.address,
            cumulative_amount=calls * PRICE_PER_CALL,
            chain_id=chain.chain_id,
            escrow=credit.address,
        )

    def redeem(calls: int) -> Any:
        voucher = voucher_for(calls)
        signature = eip712.sign_voucher(voucher, payer.private_key)
        return credit.redeem(payer, voucher.as_tuple(), signature, sender=relayer)

    redeem(3)  # warm-up: opens the bucket
    gas["voucher_redeem"] = _keep("voucher_redeem", redeem(10))

    # A relayer's routine claim for one model: one voucher from each of BATCH payers.
    payers = [accounts.test_accounts.generate_test_account() for _ in range(BATCH)]
    vouchers, signatures = [], []
    for account in payers:
        deployer.transfer(account, 10**18)
        core.token.transfer(account, 100 * PRICE_PER_CALL, sender=accounts.test_accounts[1])
        core.token.approve(credit, MAX_UINT, sender=account)
        credit.deposit(model_id, relayer, 100 * PRICE_PER_CALL, sender=account)
        voucher = voucher_for(7)
        vouchers.append(voucher.as_tuple())
        signatures.append(eip712.sign_voucher(voucher, account.private_key))
    tx = credit.redeemBatch(payers, vouchers, signatures, sender=relayer)
    _kept["voucher_redeem_batch"] = tx
    gas["voucher_redeem_batched"] = int(tx.gas_used) // BATCH
    return gas


_COLD_ACCOUNT_OPS = {"CALL", "STATICCALL", "DELEGATECALL", "CALLCODE", "EXTCODESIZE",
                     "EXTCODEHASH", "EXTCODECOPY", "BALANCE"}  # fmt: skip


def _category(op: str, cost: int) -> str:
    if op == "SLOAD":
        return "slot reads, cold (2,100)" if cost >= 2_100 else "slot reads, warm (100)"
    if op == "SSTORE":
        if cost >= 20_000:
            return "slot writes from zero (20,000 + cold)"
        return "slot writes, non-zero (2,900 + cold)" if cost >= 2_900 else "slot writes, warm"
    if op.startswith("LOG"):
        return "logs"
    if op in _COLD_ACCOUNT_OPS:
        return "calls: cold accounts (2,600) and call overhead"
    if op in ("KECCAK256", "SHA3"):
        return "keccak (mapping keys, digests)"
    return "everything else (dispatch, ABI coding, checks, memory)"


def breakdown(tx: Any) -> dict[str, int]:
    """Where ``tx``'s gas went, by opcode category, from anvil's ``debug_traceTransaction``.

    A step's cost is the drop in gas to the next step at its depth; a call's cost is the drop
    over the whole call minus what its callee's own steps spent (so the callee's work is counted
    in its own categories, the call itself under "calls").
    """
    trace = chain.provider.make_request(
        "debug_traceTransaction",
        [tx.txn_hash, {"disableStack": True, "disableMemory": True, "disableStorage": True}],
    )
    steps = trace["structLogs"]
    parts: dict[str, int] = {}
    for i, step in enumerate(steps):
        depth = step["depth"]
        following = steps[i + 1] if i + 1 < len(steps) else None
        if following is None or following["depth"] < depth:
            cost = int(step["gasCost"])
        elif following["depth"] == depth:
            cost = int(step["gas"]) - int(following["gas"])
        else:  # a call: its own cost is the drop over it less the callee's steps
            j = i + 1
            while j < len(steps) and steps[j]["depth"] > depth:
                j += 1
            end_gas = int(steps[j]["gas"]) if j < len(steps) else int(step["gas"])
            last = steps[j - 1]
            spent_inside = int(following["gas"]) - (int(last["gas"]) - int(last["gasCost"]))
            cost = int(step["gas"]) - end_gas - spent_inside
        key = _category(step["op"], cost)
        parts[key] = parts.get(key, 0) + cost
    data = bytes(tx.transaction.data)
    zeros = data.count(0)
    intrinsic = 21_000 + 16 * (len(data) - zeros) + 4 * zeros
    executed = sum(parts.values())
    result = {"intrinsic: 21,000 + calldata": intrinsic, **dict(sorted(parts.items()))}
    result["refunds (cleared slots)"] = int(tx.gas_used) - intrinsic - executed
    result["total (gas_used)"] = int(tx.gas_used)
    return result


def main() -> None:
    """Entry point of `ape run gas_bench`.

    On ape's in-process chain (the default network, what `make bench` runs) it writes gas.json;
    on anvil (`--network ethereum:local:foundry`) it writes gas_trace.json: the same run, with
    the rent, buy, deposit and redeem transactions broken down by opcode category.
    """
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    gas = measure()
    for key, value in gas.items():
        log.info("%-16s %9d", key, value)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    if "foundry" in chain.provider.name:
        traces = {key: breakdown(tx) for key, tx in _kept.items()}
        TRACES.write_text(json.dumps(traces, indent=2) + "\n")
        log.info("wrote %s", TRACES)
        return
    RESULTS.write_text(json.dumps(gas, indent=2) + "\n")
    log.info("wrote %s", RESULTS)
