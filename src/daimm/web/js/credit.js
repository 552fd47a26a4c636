// Pay-per-use credit on the model page (docs/WEB.md, "Pay per call"): deposit credit for this model
// and a relayer from the wallet, see the balance and what was spent, reclaim after the timeout; and
// `payPerCall`, which "Try it" uses when the wallet holds no licence: the wallet signs one session
// with a spend cap naming the relayer (the one prompt), then each call's voucher (the cumulative
// amount on the holder's channel) is signed in the tab by the session key, with no prompt.
// The relayer checks the voucher against the session's bounds before it runs the model, and the
// chain caps the session's spend across every redemption (docs/CONTRACTS-EXT.md, "Sessions").
import { getAddress, parseUnits, zeroAddress } from "viem";
import { currencyOf, walletClient } from "./chain.js";
import { amount, explain, say } from "./errors.js";
import { SessionRelayerClient, parseApiKey, sessionHeaders, verifyReceipt } from "./session.js";
import { signSession } from "./sessionbook.js";
import { onWalletChange, wallet } from "./wallet.js";

const MSG = "credit-message";
/** Calls a pay-per-call session may pay for (its spend cap is this many times the price). */
export const SESSION_CALLS = 100n;

let creditConfig = null;

/** `/api/credit/config`: the CreditEscrow (address, ABI) and the Voucher type, fetched once. */
export async function loadCreditConfig() {
  if (creditConfig) return creditConfig;
  const response = await fetch("/api/credit/config");
  if (!response.ok) throw new Error(`the server's /api/credit/config answered ${response.status}`);
  creditConfig = await response.json();
  return creditConfig;
}

function escrowOf(credit) {
  if (!credit.escrow) throw new Error("this deployment has no CreditEscrow: pay-per-use is not offered");
  return { address: getAddress(credit.escrow), abi: credit.abi };
}

function when(seconds) {
  return new Date(Number(seconds) * 1000).toISOString().replace("T", " ").slice(0, 16) + " UTC";
}

const chosenRelayer = () => getAddress(document.getElementById("credit-relayer").value);

/** The relayer's record of `payer` here: `{ spent, price }` (what the next voucher must cover). */
async function relayerCredit(relayer, modelId, payer) {
  const response = await fetch(`/api/relayers/${relayer}/models/${modelId}/credit/${payer}`);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(`the relayer's credit answer: ${body.detail || response.status}`);
  return { spent: BigInt(body.spent), price: BigInt(body.price_per_call) };
}

/** The channel on chain (and the relayer's unredeemed spend): shown in the panel. */
export async function showCredit(config, data) {
  const node = document.getElementById("credit-balance");
  if (!node || !wallet.account) return null;
  const credit = await loadCreditConfig();
  const escrow = escrowOf(credit);
  const relayer = chosenRelayer();
  const channel = await config.publicClient.readContract({
    ...escrow, functionName: "channelOf", args: [wallet.account, BigInt(data.model_id), relayer],
  });
  const currency = currencyOf(config, channel.expiresAt === 0n ? data.offer.currency : channel.currency);
  let spent = channel.redeemed;
  try {
    spent = (await relayerCredit(relayer, data.model_id, wallet.account)).spent;
  } catch {
    // NOTE: the relayer may be down: what was redeemed on chain is still right, if behind.
  }
  const balance = channel.deposited > spent ? channel.deposited - spent : 0n;
  const now = BigInt(Math.floor(Date.now() / 1000));
  node.dataset.deposited = channel.deposited.toString();
  node.dataset.spent = spent.toString();
  node.dataset.balance = balance.toString();
  if (channel.deposited === 0n) {
    node.textContent = "No credit with this relayer yet.";
  } else {
    node.textContent =
      `Balance ${amount(balance, currency)} of ${amount(channel.deposited, currency)} deposited; ` +
      `spent ${amount(spent, currency)} (${amount(channel.redeemed, currency)} redeemed on chain). ` +
      (channel.expiresAt > now
        ? `Reclaimable from ${when(channel.expiresAt)}.`
        : `Timed out on ${when(channel.expiresAt)}: reclaim what was not redeemed.`);
  }
  const reclaim = document.getElementById("credit-reclaim");
  reclaim.disabled = !(channel.expiresAt !== 0n && channel.expiresAt <= now && channel.deposited > channel.redeemed);
  return { channel, spent, balance, currency };
}

async function send(config, request, label) {
  say(MSG, `${label}: confirm in your wallet…`);
  const hash = await walletClient(config).writeContract(request);
  say(MSG, `${label}: waiting for transaction ${hash.slice(0, 10)}…`);
  const receipt = await config.publicClient.waitForTransactionReceipt({ hash });
  if (receipt.status !== "success") throw new Error(`${label}: the transaction ${hash} failed`);
  return receipt;
}

/** Deposit `text` (in the offer's currency) for this model and the chosen relayer. */
async function deposit(config, data, text) {
  const credit = await loadCreditConfig();
  const escrow = escrowOf(credit);
  const client = config.publicClient;
  const account = wallet.account;
  const relayer = chosenRelayer();
  const currency = currencyOf(config, data.offer.currency);
  const value = parseUnits(String(text || "0"), currency.decimals);
  if (value <= 0n) throw new Error("Enter an amount to deposit.");
  const isEth = data.offer.currency === zeroAddress;
  let steps = 1;
  if (!isEth) {
    const token = { address: data.offer.currency, abi: config.abi("AIModelToken") };
    const balance = await client.readContract({ ...token, functionName: "balanceOf", args: [account] });
    if (balance < value) throw new Error(`${account} holds ${amount(balance, currency)}, less than ${amount(value, currency)}: fund the account`);
    const allowance = await client.readContract({ ...token, functionName: "allowance", args: [account, escrow.address] });
    if (allowance < value) {
      steps = 2;
      const { request } = await client.simulateContract({ ...token, functionName: "approve", args: [escrow.address, value], account });
      await send(config, request, `Step 1 of 2: approve the CreditEscrow to take ${amount(value, currency)}`);
    }
  }
  const { request } = await client
    .simulateContract({ ...escrow, functionName: "deposit", args: [BigInt(data.model_id), relayer, value], account, value: isEth ? value : 0n })
    .catch((error) => {
      throw new Error(explain(error, { currency, errors: config.errors }));
    });
  await send(config, request, `${steps === 2 ? "Step 2 of 2: " : ""}deposit ${amount(value, currency)}`);
  return `Deposited ${amount(value, currency)} for model ${data.model_id} with relayer ${relayer.slice(0, 10)}….`;
}

async function reclaim(config, data) {
  const escrow = escrowOf(await loadCreditConfig());
  const { request } = await config.publicClient
    .simulateContract({ ...escrow, functionName: "reclaim", args: [BigInt(data.model_id), chosenRelayer()], account: wallet.account })
    .catch((error) => {
      throw new Error(explain(error, { errors: config.errors }));
    });
  await send(config, request, "reclaim the unredeemed credit");
  return "Reclaimed what the relayer had not redeemed.";
}

// ------------------------------------------------------------------ pay per call under a session
const storageKey = (config, data, relayer) => `daimm.credit.${config.chain_id}.${data.model_id}.${relayer}`;

/** The tab's pay-per-call session for this model and relayer, or a new one (the one prompt). */
async function spendingSession(config, data, relayer, price) {
  const saved = sessionStorage.getItem(storageKey(config, data, relayer));
  if (saved) {
    const key = await parseApiKey(saved);
    const soon = BigInt(Math.floor(Date.now() / 1000) + 30);
    if (key.session.holder === wallet.account && key.session.expiresAt > soon) return key;
  }
  const key = await signSession(
    config, { modelId: BigInt(data.model_id), relayer, spendCap: price * SESSION_CALLS }, "pay-per-call",
  );
  sessionStorage.setItem(storageKey(config, data, relayer), key.text);
  return key;
}

/**
 * Pay for one call of `document_` from the wallet's credit with the chosen relayer, under the
 * tab's pay-per-call session: `{ outputs, predictions, receipt, answer, text, body, relayer,
 * charged }`, the receipt verified. "Try it" calls this when the wallet holds no licence.
 */
export async function payPerCall(config, data, document_) {
  if (!wallet.account) throw new Error("Connect a wallet first: it signs the session.");
  const credit = await loadCreditConfig();
  const relayer = chosenRelayer();
  const { spent, price } = await relayerCredit(relayer, data.model_id, wallet.account);
  const key = await spendingSession(config, data, relayer, price);
  const route = (r, path) => `/api/relayers/${r.address}${path.replace(/^\/v1/, "")}`;
  const client = new SessionRelayerClient({ address: relayer }, key, { route });
  const info = await client.info();
  const body = JSON.stringify(document_);
  const headers = await sessionHeaders(key, info, data.model_id, body);
  const cumulative = spent + price;
  const signature = await key.account.signTypedData({
    domain: { ...credit.domain, chainId: config.chain_id, verifyingContract: escrowOf(credit).address },
    types: credit.types,
    primaryType: "Voucher",
    message: { modelId: BigInt(data.model_id), relayer, cumulativeAmount: cumulative, chainId: BigInt(config.chain_id), escrow: escrowOf(credit).address },
  });
  headers["x-daimm-voucher"] = `${cumulative}:${signature}`;
  const response = await fetch(route({ address: relayer }, `/v1/models/${data.model_id}/predict`), { method: "POST", body, headers });
  const text = await response.text();
  if (!response.ok) {
    let refusal = {};
    try {
      refusal = JSON.parse(text);
    } catch {
      // not JSON: the status says enough
    }
    if (["session_spend_cap", "session_revoked", "session_revoked_all", "session_expired"].includes(refusal.error)) {
      sessionStorage.removeItem(storageKey(config, data, relayer)); // the next call signs a new session
    }
    const error = new Error(`The relayer refused (${refusal.error || response.status}): ${refusal.detail || text}`);
    error.code = refusal.error;
    throw error;
  }
  const { answer, receipt } = await verifyReceipt(text, body, { ...info, modelId: data.model_id });
  await showCredit(config, data).catch(() => {});
  return { outputs: answer.outputs, predictions: answer.predictions ?? null, receipt, answer, text, body, relayer, charged: BigInt(answer.charged ?? price) };
}

export function setupCredit(config, data) {
  const panel = document.getElementById("credit-panel");
  if (!panel) return;
  const depositButton = document.getElementById("credit-deposit");
  const reclaimButton = document.getElementById("credit-reclaim");
  const refresh = () => showCredit(config, data).catch((error) => say(MSG, explain(error), "err"));
  const run = async (button, action) => {
    button.disabled = true;
    try {
      say(MSG, await action(), "ok");
    } catch (error) {
      say(MSG, explain(error, { errors: config.errors }), "err");
    } finally {
      button.disabled = !(wallet.account && wallet.onRightChain);
      await refresh();
    }
  };
  depositButton.addEventListener("click", () => run(depositButton, () => deposit(config, data, document.getElementById("credit-amount").value)));
  reclaimButton.addEventListener("click", () => run(reclaimButton, () => reclaim(config, data)));
  document.getElementById("credit-relayer").addEventListener("change", refresh);
  onWalletChange(() => {
    depositButton.disabled = !(wallet.account && wallet.onRightChain);
    if (wallet.account && wallet.onRightChain) refresh();
  });
}
