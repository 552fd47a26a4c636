// The model page: licence status, and rent / extend / buy with the checks `daimm rent` makes
// (src/daimm/market/escrow.py): the offer is still active, the price is at most what the page
// showed (sent as the on-chain price cap), the balance covers it, and an ERC-20 allowance is
// approved first when short. The call is simulated before the wallet is asked, so a revert is
// named by its custom error before anything is signed.
import { parseEventLogs, zeroAddress } from "viem";
import { currencyOf, walletClient } from "./chain.js";
import { amount, explain, isRpcOutage, say, showRpcBanner } from "./errors.js";
import { onWalletChange, wallet } from "./wallet.js";

const MSG = "tx-message";

function offerTuple(raw) {
  return {
    currency: raw.currency,
    pricePerPeriod: raw.pricePerPeriod,
    periodSeconds: raw.periodSeconds,
    minPeriods: raw.minPeriods,
    maxPeriods: raw.maxPeriods,
    active: raw.active,
    perpetualPrice: raw.perpetualPrice,
    pricePerCall: raw.pricePerCall,
  };
}

function when(seconds) {
  return new Date(Number(seconds) * 1000).toISOString().replace("T", " ").slice(0, 16) + " UTC";
}

/** Licence status of the connected account; never "no licence" when the chain cannot be read. */
async function accessStatus(config, modelId) {
  const node = document.getElementById("access-status");
  if (!node || !wallet.account) return null;
  const client = config.publicClient;
  const licences = { address: config.contracts.LicenseNFT, abi: config.abi("LicenseNFT") };
  try {
    const access = await client.readContract({ ...licences, functionName: "hasAccess", args: [BigInt(modelId), wallet.account] });
    const rental = await client.readContract({ ...licences, functionName: "rentalOf", args: [BigInt(modelId), wallet.account] });
    let expires = 0n;
    if (rental > 0n) {
      expires = await client.readContract({ ...licences, functionName: "userExpires", args: [rental] });
    }
    if (access && rental > 0n && expires > 0n) {
      node.textContent = `You hold rental licence #${rental}, valid until ${when(expires)}.`;
    } else if (access) {
      node.textContent = "You hold a perpetual licence for this model.";
    } else if (rental > 0n) {
      node.textContent = `Your rental licence #${rental} expired on ${when(expires)}: renting again extends it.`;
    } else {
      node.textContent = "You hold no licence for this model.";
    }
    node.dataset.access = access ? "yes" : "no";
    return { access, rental, expires };
  } catch (error) {
    if (isRpcOutage(error)) showRpcBanner();
    node.textContent = "Cannot check your licence now: the chain is not answering.";
    node.dataset.access = "unknown";
    return null;
  }
}

async function send(config, request, label) {
  const { walletClient } = config;
  say(MSG, `${label}: confirm in your wallet…`);
  const hash = await walletClient.writeContract(request);
  say(MSG, `${label}: waiting for transaction ${hash.slice(0, 10)}…`);
  const receipt = await config.publicClient.waitForTransactionReceipt({ hash });
  if (receipt.status !== "success") throw new Error(`${label}: the transaction ${hash} failed`);
  return receipt;
}

/** Pay for ``method`` ("rent" or "buy"): pre-flight, approval, simulation, transaction. */
export async function pay(config, data, method, periods) {
  const modelId = BigInt(data.model_id);
  const client = config.publicClient;
  const escrow = { address: config.contracts.RentalEscrow, abi: config.abi("RentalEscrow") };
  const account = wallet.account;
  // 1. The offer on chain now (the page may be stale).
  const offer = offerTuple(await client.readContract({ ...escrow, functionName: "offerOf", args: [modelId] }));
  const currency = currencyOf(config, offer.currency);
  const context = { currency, errors: config.errors };
  if (!offer.active) throw new Error(`model ${modelId} has no active offer any more: its owner withdrew it`);
  let price;
  let cap;
  let args;
  if (method === "rent") {
    if (offer.pricePerPeriod === 0n) throw new Error(`model ${modelId} is not for rent any more`);
    if (periods < offer.minPeriods || periods > offer.maxPeriods) {
      throw new Error(`model ${modelId} rents for ${offer.minPeriods} to ${offer.maxPeriods} periods, not ${periods}`);
    }
    price = offer.pricePerPeriod * periods;
    cap = BigInt(data.offer.price_per_period) * periods;
    args = [modelId, periods, cap];
  } else {
    if (offer.perpetualPrice === 0n) throw new Error(`model ${modelId} is not for sale any more`);
    price = offer.perpetualPrice;
    cap = BigInt(data.offer.perpetual_price);
    args = [modelId, cap];
  }
  // 2. The price cap: never pay more than the page showed.
  if (price > cap) {
    throw new Error(`the price is now ${amount(price, currency)}, above the ${amount(cap, currency)} shown: reload the page if you accept it`);
  }
  // 3. Balance, and for an ERC-20 the allowance (approved here when short).
  const isEth = offer.currency === zeroAddress;
  const token = { address: offer.currency, abi: config.abi("AIModelToken") };
  const balance = isEth
    ? await client.getBalance({ address: account })
    : await client.readContract({ ...token, functionName: "balanceOf", args: [account] });
  if (balance < price) {
    throw new Error(`${account} holds ${amount(balance, currency)} but the payment is ${amount(price, currency)}${isEth ? " plus gas" : ""}: fund the account`);
  }
  let steps = 1;
  if (!isEth) {
    const allowance = await client.readContract({ ...token, functionName: "allowance", args: [account, escrow.address] });
    if (allowance < price) {
      steps = 2;
      const { request } = await client.simulateContract({ ...token, functionName: "approve", args: [escrow.address, price], account });
      await send(config, request, `Step 1 of 2: approve the escrow to take ${amount(price, currency)}`);
    }
  }
  // 4. Simulate (a revert is named here), then send.
  const { request } = await client
    .simulateContract({ ...escrow, functionName: method, args, account, value: isEth ? price : 0n })
    .catch((error) => {
      throw new Error(explain(error, context));
    });
  const label = `${steps === 2 ? "Step 2 of 2: " : ""}${method === "rent" ? "rent" : "buy"} for ${amount(price, currency)}`;
  const receipt = await send(config, request, label);
  const events = parseEventLogs({ abi: escrow.abi, logs: receipt.logs });
  const rented = events.find((e) => e.eventName === "Rented");
  const bought = events.find((e) => e.eventName === "Bought");
  if (rented) return `Rented: licence #${rented.args.licenceId}, valid until ${when(rented.args.expires)} (paid ${amount(price, currency)}).`;
  if (bought) return `Bought: perpetual licence #${bought.args.licenceId} (paid ${amount(price, currency)}).`;
  return "Done.";
}

export function setupModelPage(config, data) {
  const rentButton = document.getElementById("rent-button");
  const buyButton = document.getElementById("buy-button");
  const periodsInput = document.getElementById("rent-periods");
  const total = document.getElementById("rent-total");
  const currency = data.offer.currency ? currencyOf(config, data.offer.currency) : null;
  const showTotal = () => {
    if (!periodsInput || !currency) return;
    const n = BigInt(Math.max(0, Number.parseInt(periodsInput.value || "0", 10) || 0));
    total.textContent = `= ${amount(BigInt(data.offer.price_per_period) * n, currency)}`;
  };
  periodsInput?.addEventListener("input", showTotal);
  showTotal();

  const update = async () => {
    const ready = Boolean(wallet.account && wallet.onRightChain && config.walletClient);
    if (rentButton) rentButton.disabled = !ready;
    if (buyButton) buyButton.disabled = !ready;
    if (!wallet.account) return;
    if (!wallet.onRightChain) {
      say(MSG, `Switch your wallet to chain ${config.chain_id} to rent or buy.`, "err");
      return;
    }
    const status = await accessStatus(config, data.model_id);
    if (rentButton) rentButton.textContent = status && status.rental > 0n ? "Extend rental" : "Rent";
  };
  onWalletChange(async () => {
    config.walletClient = walletClient(config);
    await update();
  });

  const run = async (button, method) => {
    button.disabled = true;
    try {
      const periods = method === "rent" ? BigInt(Number.parseInt(periodsInput.value, 10) || 0) : 0n;
      const message = await pay(config, data, method, periods);
      say(MSG, message, "ok");
    } catch (error) {
      say(MSG, explain(error, { currency, errors: config.errors }), "err");
    } finally {
      await update();
    }
  };
  rentButton?.addEventListener("click", () => run(rentButton, "rent"));
  buyButton?.addEventListener("click", () => run(buyButton, "buy"));

  // Relayer status: a relayer that is down is shown as such; the rest of the page works.
  for (const node of document.querySelectorAll(".relayer-status")) {
    fetch(`/api/relayers/${node.dataset.relayer}/health`)
      .then(async (response) => {
        const body = await response.json().catch(() => ({}));
        node.textContent = response.ok && body.status === "ok" ? "up" : `down (${body.detail || response.status})`;
        node.className = `relayer-status ${response.ok ? "up" : "down"}`;
      })
      .catch(() => {
        node.textContent = "down";
        node.className = "relayer-status down";
      });
  }
}
