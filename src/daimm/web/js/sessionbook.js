// Session keys in the pages: the wallet signs a session (one prompt), revokes it (one transaction),
// and this browser remembers the public part of the sessions it made (never a key) in localStorage,
// for the API-key page's list. The session module itself (keys, tokens, requests) is session.js.
import { getAddress } from "viem";
import { walletClient } from "./chain.js";
import { createApiKey } from "./session.js";
import { wallet } from "./wallet.js";

let cached = null;

/** `/api/sessions/config`: the SessionRegistry (address, ABI) and the defaults, fetched once. */
export async function sessionsConfig() {
  if (cached) return cached;
  const response = await fetch("/api/sessions/config");
  if (!response.ok) throw new Error(`the server's /api/sessions/config answered ${response.status}`);
  cached = await response.json();
  return cached;
}

function registryOf(sc) {
  if (!sc.registry) throw new Error("This marketplace has no SessionRegistry: session keys are not available here.");
  return { address: sc.registry, abi: sc.abi };
}

/**
 * A fresh key made here and a session for it, signed by the connected wallet: one
 * eth_signTypedData_v4. `rules`: `modelId`, `relayer` (null: any), `ttlS`, `maxCalls`.
 * The session (not the key) is remembered in this browser as `kind` ("try-it" or "api-key").
 */
export async function signSession(config, rules, kind) {
  if (!wallet.account) throw new Error("Connect a wallet first: it signs the session.");
  if (!wallet.onRightChain) throw new Error(`Switch your wallet to chain ${config.chain_id} first.`);
  const registry = registryOf(await sessionsConfig());
  const holder = wallet.account;
  const nonce = await config.publicClient.readContract({ ...registry, functionName: "nonceOf", args: [holder] });
  const key = await createApiKey({
    ...rules, holder, nonce, chainId: config.chain_id, registry: registry.address,
    signTypedData: (document) => walletClient(config).signTypedData({ account: holder, ...document }),
  });
  remember(config, key, kind);
  return key;
}

async function send(config, functionName, args) {
  const registry = registryOf(await sessionsConfig());
  const { request } = await config.publicClient.simulateContract({ ...registry, functionName, args, account: wallet.account });
  const hash = await walletClient(config).writeContract(request);
  const receipt = await config.publicClient.waitForTransactionReceipt({ hash });
  if (receipt.status !== "success") throw new Error(`the transaction ${hash} failed`);
  return receipt;
}

/** Revoke the connected wallet's session `hash` on chain (SessionRegistry.revoke; one transaction). */
export async function revokeSession(config, hash) {
  return send(config, "revoke", [hash]);
}

/** Revoke every session the connected wallet signed so far (SessionRegistry.revokeAll). */
export async function revokeAllSessions(config) {
  return send(config, "revokeAll", []);
}

/** Each session's state on chain: "revoked", "revoked (all)", "expired" or "live". */
export async function sessionStates(config, entries) {
  const registry = registryOf(await sessionsConfig());
  const now = BigInt(Math.floor(Date.now() / 1000));
  return Promise.all(entries.map(async (e) => {
    const [revoked, nonce] = await config.publicClient.readContract({ ...registry, functionName: "sessionState", args: [e.holder, e.hash] });
    if (revoked) return "revoked";
    if (nonce !== BigInt(e.nonce)) return "revoked (all)";
    return BigInt(e.expiresAt) <= now ? "expired" : "live";
  }));
}

const bookKey = (config) => `daimm.sessions.${config.chain_id}`;

/** The sessions this browser made for `holder` (public parts only), newest first. */
export function remembered(config, holder) {
  let all = [];
  try {
    all = JSON.parse(localStorage.getItem(bookKey(config)) || "[]");
  } catch (_) {
    all = [];
  }
  return all.filter((e) => holder && getAddress(e.holder) === getAddress(holder)).reverse();
}

function remember(config, key, kind) {
  const s = key.session;
  const entry = {
    hash: key.hash, kind, holder: s.holder, key: s.key, modelId: s.modelId.toString(), relayer: s.relayer,
    expiresAt: s.expiresAt.toString(), maxCalls: s.maxCalls.toString(), nonce: s.nonce.toString(),
    madeAt: Math.floor(Date.now() / 1000),
  };
  let all = [];
  try {
    all = JSON.parse(localStorage.getItem(bookKey(config)) || "[]");
  } catch (_) {
    all = [];
  }
  localStorage.setItem(bookKey(config), JSON.stringify([...all, entry].slice(-200)));
}
