// Session keys in JavaScript, for Node and the browser: the same code the model page and the
// API-key page run, and what applications import from `daimm-session.mjs` (`make web`).
//
// It mirrors the Python side byte for byte (tested against it): `src/daimm/sessions.py` (the
// `Session`, its `X-Daimm-Session` token and the `daimm_sk_...` API key, each malformed key refused
// with the same code), `src/daimm/client.py` (`SessionRelayerClient` signs each `PredictRequest`
// with the session key and sends the session; `SessionClient` fails over between relayers in the
// same order) and the receipt check of `daimm verify-receipt`. Nothing here touches the DOM.
//
//   import { SessionClient } from "./daimm-session.mjs";
//   const client = new SessionClient(process.env.DAIMM_API_KEY,
//                                    [{ url: "https://r1.example", address: "0xR1..." }]);
//   const { outputs, receipt } = await client.predict(1, { inputs: { input: [[5.1, 3.5, 1.4, 0.2]] } });
//
// Failover (docs/RELAYER.md, "Session keys"): relayers are tried in the order given; one that cannot
// be reached, answers 503, or refuses with `chain_unavailable`, `model_unavailable`,
// `relayer_not_authorised` (or, through `daimm web`'s pass-through, `relayer_unavailable`) is tried
// last for `cooldownMs` (30 s) and the next one gets a freshly signed request. `fetch` has no connect
// timeout of its own, so a relayer's `/v1/health` (asked before its first call) must answer within
// `connectTimeoutMs` (2 s) and each prediction within `timeoutMs` (30 s). Any other refusal is an
// answer and is thrown at once, as is a receipt that does not verify.
import {
  bytesToHex,
  concat,
  getAddress,
  hashTypedData,
  hexToBigInt,
  hexToBytes,
  keccak256,
  numberToHex,
  recoverTypedDataAddress,
  toBytes,
  toHex,
} from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

export const API_KEY_PREFIX = "daimm_sk_";
/** Version byte of the session token and API key layouts. */
export const SESSION_VERSION = 1;
/** A session lasts 24 hours unless asked otherwise (seconds). */
export const DEFAULT_TTL_S = 24 * 3600;
/** The longest session `newSession` makes: 30 days (seconds). */
export const MAX_TTL_S = 30 * 24 * 3600;
/** Calls per relayer a session allows unless asked otherwise. */
export const DEFAULT_MAX_CALLS = 10_000n;
export const ZERO_ADDRESS = "0x0000000000000000000000000000000000000000";

// chain id 8 | registry 20 | holder 20 | key 20 | model id 32 | relayer 20 | expires at 8 |
// max calls 8 | spend cap 16 | nonce 32 (big-endian, fixed widths), as in sessions.py.
const SESSION_BYTES = 184;
const SIGNATURE_BYTES = 65;
const TOKEN_BYTES = 1 + SESSION_BYTES + SIGNATURE_BYTES;
const API_KEY_BYTES = 1 + 32 + SESSION_BYTES + SIGNATURE_BYTES + 4;
const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const FAILOVER_CODES = new Set([
  "chain_unavailable",
  "model_unavailable",
  "relayer_not_authorised",
  "relayer_unavailable",
]);

/** The EIP-712 types (src/daimm/eip712.py). */
export const TYPES = {
  Session: [
    { name: "holder", type: "address" },
    { name: "key", type: "address" },
    { name: "modelId", type: "uint256" },
    { name: "relayer", type: "address" },
    { name: "expiresAt", type: "uint64" },
    { name: "maxCalls", type: "uint64" },
    { name: "spendCap", type: "uint128" },
    { name: "nonce", type: "uint256" },
  ],
  PredictRequest: [
    { name: "modelId", type: "uint256" },
    { name: "bodyHash", type: "bytes32" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
    { name: "chainId", type: "uint256" },
    { name: "relayer", type: "address" },
  ],
  Receipt: [
    { name: "modelId", type: "uint256" },
    { name: "weightsCid", type: "string" },
    { name: "inputsHash", type: "bytes32" },
    { name: "outputsHash", type: "bytes32" },
    { name: "timestamp", type: "uint256" },
  ],
};

// ------------------------------------------------------------------ errors (codes as in Python)
/** A pasted API key that cannot be used; `code` is Python's `ApiKeyError.code`. */
export class ApiKeyError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "ApiKeyError";
    this.code = code;
  }
}

/** A session that breaks a rule (`session_ttl`, `session_key_is_holder`, ...). */
export class SessionError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "SessionError";
    this.code = code;
  }
}

/** A relayer that cannot be reached or answered garbage. */
export class RelayerError extends Error {
  constructor(message) {
    super(message);
    this.name = "RelayerError";
  }
}

/** A relayer's refusal: HTTP `status`, its `code` (`session_revoked`, ...) and `detail`. */
export class RequestRefusedError extends Error {
  constructor(status, code, detail) {
    super(`${code}: ${detail}`);
    this.name = "RequestRefusedError";
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

/** A receipt that does not verify. */
export class ReceiptError extends Error {
  constructor(message) {
    super(message);
    this.name = "ReceiptError";
  }
}

// ------------------------------------------------------------------ base64url (one spelling only)
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

export function base64urlEncode(bytes) {
  let out = "";
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    const chars = [18, 12, 6, 0].map((shift) => ALPHABET[(n >> shift) & 63]);
    out += chars.slice(0, Math.min(4, bytes.length - i + 1)).join("");
  }
  return out;
}

/** Decode base64url without padding; throws unless `text` is its one canonical spelling. */
export function base64urlDecode(text) {
  if (!text || !/^[A-Za-z0-9_-]+$/.test(text) || text.length % 4 === 1) {
    throw new Error("not base64url");
  }
  const bytes = new Uint8Array(Math.floor((text.length * 3) / 4));
  let bits = 0;
  let value = 0;
  let at = 0;
  for (const c of text) {
    value = (value << 6) | ALPHABET.indexOf(c);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes[at++] = (value >> bits) & 0xff;
    }
  }
  // NOTE: unused low bits in the last character: one spelling only (as sessions.py).
  if (base64urlEncode(bytes) !== text) throw new Error("not canonical base64url");
  return bytes;
}

// ------------------------------------------------------------------ the session
function uintBytes(value, width) {
  return hexToBytes(numberToHex(BigInt(value), { size: width }));
}

function readUint(raw, at, width) {
  return hexToBigInt(bytesToHex(raw.subarray(at, at + width)));
}

function readAddress(raw, at) {
  return getAddress(bytesToHex(raw.subarray(at, at + 20)));
}

/** A session with every field normalised (checksummed addresses, bigint numbers). */
export function normaliseSession(s) {
  return {
    holder: getAddress(s.holder),
    key: getAddress(s.key),
    modelId: BigInt(s.modelId),
    relayer: getAddress(s.relayer),
    expiresAt: BigInt(s.expiresAt),
    maxCalls: BigInt(s.maxCalls),
    spendCap: BigInt(s.spendCap),
    nonce: BigInt(s.nonce),
    chainId: BigInt(s.chainId),
    registry: getAddress(s.registry),
  };
}

/**
 * A session following the defaults and rules of `sessions.new_session` (not yet signed).
 * `modelId` null means any model; `relayer` null any relayer; `ttlS` in seconds; `now` Unix seconds.
 */
export function newSession({ holder, key, modelId, nonce, chainId, registry, relayer = null,
                             ttlS = DEFAULT_TTL_S, maxCalls = DEFAULT_MAX_CALLS, spendCap = 0n,
                             now = Date.now() / 1000 }) {
  if (!(ttlS > 0 && ttlS <= MAX_TTL_S)) {
    throw new SessionError("session_ttl", `a session lasts 1..${MAX_TTL_S} s (30 days), not ${ttlS}`);
  }
  if (modelId !== null && BigInt(modelId) === 0n) {
    throw new SessionError("session_model", "model ids start at 1; pass modelId null for any model");
  }
  const session = normaliseSession({
    holder, key, modelId: modelId ?? 0n, relayer: relayer ?? ZERO_ADDRESS,
    expiresAt: BigInt(Math.floor(now)) + BigInt(ttlS), maxCalls, spendCap, nonce, chainId, registry,
  });
  if (session.key === session.holder) {
    throw new SessionError("session_key_is_holder", "the session key is the holder's own address: sign requests with the wallet instead");
  }
  if (session.maxCalls === 0n) throw new SessionError("session_no_calls", "the session allows no calls: set maxCalls >= 1");
  if (session.spendCap > 0n && session.relayer === ZERO_ADDRESS) {
    throw new SessionError("session_spend_needs_relayer", "a session with a spend cap must name one relayer (the one that redeems its calls)");
  }
  return session;
}

/** The EIP-712 document of `session` (what the holder's wallet signs with eth_signTypedData_v4). */
export function sessionTypedData(session) {
  const s = normaliseSession(session);
  return {
    domain: { name: "daimm Sessions", version: "1", chainId: s.chainId, verifyingContract: s.registry },
    types: { Session: TYPES.Session },
    primaryType: "Session",
    message: {
      holder: s.holder, key: s.key, modelId: s.modelId, relayer: s.relayer,
      expiresAt: s.expiresAt, maxCalls: s.maxCalls, spendCap: s.spendCap, nonce: s.nonce,
    },
  };
}

/** The session's hash (its EIP-712 digest): what `SessionRegistry.revoke` takes. */
export function sessionHash(session) {
  return hashTypedData(sessionTypedData(session));
}

function sessionBytes(session) {
  const s = normaliseSession(session);
  return concat([
    uintBytes(s.chainId, 8), hexToBytes(s.registry), hexToBytes(s.holder), hexToBytes(s.key),
    uintBytes(s.modelId, 32), hexToBytes(s.relayer), uintBytes(s.expiresAt, 8),
    uintBytes(s.maxCalls, 8), uintBytes(s.spendCap, 16), uintBytes(s.nonce, 32),
  ]);
}

function sessionFromBytes(raw) {
  return {
    chainId: readUint(raw, 0, 8),
    registry: readAddress(raw, 8),
    holder: readAddress(raw, 28),
    key: readAddress(raw, 48),
    modelId: readUint(raw, 68, 32),
    relayer: readAddress(raw, 100),
    expiresAt: readUint(raw, 120, 8),
    maxCalls: readUint(raw, 128, 8),
    spendCap: readUint(raw, 136, 16),
    nonce: readUint(raw, 152, 32),
  };
}

/** The `X-Daimm-Session` header value: base64url of version, session and holder signature. */
export function encodeSessionToken(session, signature) {
  const sig = hexToBytes(signature);
  if (sig.length !== SIGNATURE_BYTES) throw new SessionError("session_malformed", "the holder's signature must be 65 bytes (r, s, v)");
  return base64urlEncode(concat([new Uint8Array([SESSION_VERSION]), sessionBytes(session), sig]));
}

/** The session and holder signature in an `X-Daimm-Session` value (signature unchecked). */
export function decodeSessionToken(text) {
  let raw;
  try {
    raw = base64urlDecode(String(text).trim());
  } catch (_) {
    throw new SessionError("session_malformed", "the session header is not base64url");
  }
  if (raw.length !== TOKEN_BYTES || raw[0] !== SESSION_VERSION) {
    throw new SessionError("session_malformed", `the session header must be ${TOKEN_BYTES} bytes of version ${SESSION_VERSION}`);
  }
  return { session: sessionFromBytes(raw.subarray(1, 1 + SESSION_BYTES)), signature: bytesToHex(raw.subarray(1 + SESSION_BYTES)) };
}

/** Why a 65-byte `r || s || v` signature is refused (as `eip712.split_signature`), or null. */
function signatureProblem(signature) {
  const raw = hexToBytes(signature);
  if (raw.length !== 65) return `signature must be 65 bytes (r, s, v), got ${raw.length}`;
  const r = readUint(raw, 0, 32);
  const s = readUint(raw, 32, 32);
  if (raw[64] !== 27 && raw[64] !== 28) return `signature v must be 27 or 28, got ${raw[64]}`;
  if (!(r > 0n && r < SECP256K1_N)) return "signature r is out of range";
  if (!(s > 0n && s <= SECP256K1_N / 2n)) return "signature s is zero or in the upper half (high-s form): refused";
  return null;
}

// ------------------------------------------------------------------ API keys
/**
 * The `daimm_sk_...` string of a session key (`privateKey`, 0x hex), its `session` and the holder's
 * `signature` (0x hex): version, key, session, signature and a 4-byte Keccak checksum.
 */
export function encodeApiKey({ privateKey, session, signature }) {
  const key = hexToBytes(privateKey);
  if (key.length !== 32) throw new ApiKeyError("api_key_malformed", "a session key is 32 bytes");
  const body = concat([new Uint8Array([SESSION_VERSION]), key, sessionBytes(session), hexToBytes(signature)]);
  return API_KEY_PREFIX + base64urlEncode(concat([body, keccak256(body, "bytes").subarray(0, 4)]));
}

/**
 * Parse and check a pasted `daimm_sk_...` key, in the order `sessions.parse_api_key` does: prefix,
 * base64url, length, checksum, version, the private key matching the session's key, the holder's
 * signature. Returns `{ privateKey, account, session, signature, token, hash }`.
 *
 * @throws {ApiKeyError} `api_key_malformed`, `api_key_checksum`, `api_key_version`,
 *   `api_key_mismatch` or `api_key_bad_signature`.
 */
export async function parseApiKey(text) {
  text = String(text ?? "").trim();
  if (!text.startsWith(API_KEY_PREFIX)) {
    throw new ApiKeyError("api_key_malformed", `an API key starts with '${API_KEY_PREFIX}': paste the whole key`);
  }
  let raw;
  try {
    raw = base64urlDecode(text.slice(API_KEY_PREFIX.length));
  } catch (_) {
    throw new ApiKeyError("api_key_malformed", "the API key holds characters outside base64url: paste it again");
  }
  if (raw.length !== API_KEY_BYTES) {
    throw new ApiKeyError("api_key_malformed", `the API key is ${raw.length} bytes, not ${API_KEY_BYTES}: it was cut; paste it again`);
  }
  const body = raw.subarray(0, raw.length - 4);
  if (bytesToHex(keccak256(body, "bytes").subarray(0, 4)) !== bytesToHex(raw.subarray(raw.length - 4))) {
    throw new ApiKeyError("api_key_checksum", "the API key's checksum does not match: it was mangled; paste again");
  }
  if (body[0] !== SESSION_VERSION) {
    throw new ApiKeyError("api_key_version", `API key version ${body[0]} is not supported (this daimm reads ${SESSION_VERSION})`);
  }
  const privateKey = bytesToHex(body.subarray(1, 33));
  const session = sessionFromBytes(body.subarray(33, 33 + SESSION_BYTES));
  let account;
  try {
    account = privateKeyToAccount(privateKey);
  } catch (error) {
    throw new ApiKeyError("api_key_malformed", `the API key holds a bad field: ${error.shortMessage || error.message}`);
  }
  if (account.address !== session.key) {
    throw new ApiKeyError("api_key_mismatch", "the API key's private key is not its session's key: make a new one");
  }
  const signature = bytesToHex(body.subarray(33 + SESSION_BYTES));
  const problem = signatureProblem(signature);
  if (problem) throw new ApiKeyError("api_key_bad_signature", `the session signature: ${problem}`);
  let signer;
  try {
    signer = await recoverTypedDataAddress({ ...sessionTypedData(session), signature });
  } catch (error) {
    throw new ApiKeyError("api_key_bad_signature", `the session signature: signature does not recover to an address: ${error.shortMessage || error.message}`);
  }
  if (getAddress(signer) !== session.holder) {
    throw new ApiKeyError("api_key_bad_signature", `the session was signed by ${getAddress(signer)}, not by its holder ${session.holder}`);
  }
  return { privateKey, account, session, signature, token: encodeSessionToken(session, signature), hash: sessionHash(session) };
}

/**
 * A fresh session key and its session, signed once by the holder: `signTypedData(document)` is the
 * wallet's `eth_signTypedData_v4` (the one prompt). `rules` are `newSession`'s (`modelId`, `nonce`,
 * `chainId`, `registry`, `relayer`, `ttlS`, `maxCalls`). Returns the parsed key plus its `text`
 * (`daimm_sk_...`); parsing it checks that the wallet signed what was asked.
 */
export async function createApiKey({ holder, signTypedData, ...rules }) {
  const privateKey = generatePrivateKey();
  const session = newSession({ holder, key: privateKeyToAccount(privateKey).address, ...rules });
  const signature = await signTypedData(sessionTypedData(session));
  const text = encodeApiKey({ privateKey, session, signature });
  return { text, ...(await parseApiKey(text)) };
}

// ------------------------------------------------------------------ requests and receipts
function randomNonce() {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return hexToBigInt(toHex(bytes));
}

/**
 * The headers that sign `body` (a string) for `modelId` with the session key, as
 * `SessionRelayerClient.signed_headers`: the request's own signature plus `x-daimm-session`.
 * `info` is the relayer's `{ relayer, chainId, registry }`; `deadlineS` how long it stays valid.
 */
export async function sessionHeaders(apiKey, info, modelId, body, { nonce = randomNonce(), deadlineS = 300 } = {}) {
  const request = {
    modelId: BigInt(modelId),
    bodyHash: keccak256(toBytes(body)),
    nonce: BigInt(nonce),
    deadline: BigInt(Math.floor(Date.now() / 1000) + deadlineS),
    chainId: BigInt(info.chainId),
    relayer: getAddress(info.relayer),
  };
  const signature = await apiKey.account.signTypedData({
    domain: { name: "daimm Relayer", version: "1", chainId: info.chainId, verifyingContract: info.registry },
    types: { PredictRequest: TYPES.PredictRequest },
    primaryType: "PredictRequest",
    message: request,
  });
  return {
    "content-type": "application/json",
    "x-daimm-address": apiKey.account.address,
    "x-daimm-signature": signature,
    "x-daimm-nonce": request.nonce.toString(),
    "x-daimm-deadline": request.deadline.toString(),
    "x-daimm-chain-id": String(info.chainId),
    "x-daimm-relayer": request.relayer,
    "x-daimm-session": apiKey.token,
  };
}

/**
 * The bytes of the relayer's answer its receipt hashes: `{"outputs":...,"predictions":...}` when
 * the answer has predictions, else the raw JSON text of `outputs` (docs/RELAYER.md).
 */
function hashedOutputs(text, answer) {
  const start = text.indexOf('{"outputs":');
  const end = text.lastIndexOf(',"receipt":');
  if (start !== 0 || end < 0) throw new ReceiptError('the relayer\'s answer is not {"outputs": ..., "receipt": ...}');
  if (answer.predictions != null) return `${text.slice(0, end)}}`;
  return text.slice('{"outputs":'.length, end);
}

/**
 * Check an answer (its exact `text`) before using it: the receipt is signed by `relayer` for
 * `chainId` and `registry` (the RelayerRegistry), over `body` as sent and the outputs received,
 * for `modelId`. Returns `{ answer, receipt }`.
 *
 * @throws {ReceiptError} Malformed, signed by someone else, or hashes that do not match.
 */
export async function verifyReceipt(text, body, { relayer, chainId, registry, modelId }) {
  let answer;
  try {
    answer = JSON.parse(text);
  } catch (_) {
    throw new ReceiptError("the relayer's answer is not JSON");
  }
  const r = answer.receipt;
  if (!r) throw new ReceiptError("the answer carries no receipt");
  if (r.inputsHash !== keccak256(toBytes(body))) throw new ReceiptError("receipt inputsHash does not match the request body sent");
  if (r.outputsHash !== keccak256(toBytes(hashedOutputs(text, answer)))) throw new ReceiptError("receipt outputsHash does not match the outputs received");
  if (BigInt(r.modelId) !== BigInt(modelId)) throw new ReceiptError(`receipt is for model ${r.modelId}, not ${modelId}`);
  if (BigInt(r.chainId) !== BigInt(chainId) || getAddress(r.verifyingContract) !== getAddress(registry)) {
    throw new ReceiptError("receipt is for another chain or registry");
  }
  const problem = typeof r.signature === "string" && r.signature.length === 132 ? signatureProblem(r.signature) : "signature must be 65 bytes";
  if (problem) throw new ReceiptError(`receipt signature is invalid: ${problem}`);
  const signer = await recoverTypedDataAddress({
    domain: { name: "daimm Relayer", version: "1", chainId: BigInt(r.chainId), verifyingContract: getAddress(r.verifyingContract) },
    types: { Receipt: TYPES.Receipt },
    primaryType: "Receipt",
    message: {
      modelId: BigInt(r.modelId), weightsCid: r.weightsCid, inputsHash: r.inputsHash,
      outputsHash: r.outputsHash, timestamp: BigInt(r.timestamp),
    },
    signature: r.signature,
  });
  if (getAddress(signer) !== getAddress(relayer)) throw new ReceiptError(`receipt was signed by ${signer}, not by relayer ${relayer}`);
  return { answer, receipt: r };
}

function refusalOf(status, text) {
  let data = null;
  try {
    data = JSON.parse(text);
  } catch (_) {
    return new RelayerError(`the relayer answered ${status} with a body that is not JSON`);
  }
  if (data && typeof data === "object" && "error" in data) return new RequestRefusedError(status, String(data.error), String(data.detail ?? ""));
  return new RelayerError(`the relayer answered ${status}`);
}

async function send(fetchFn, url, init, timeoutMs) {
  try {
    const response = await fetchFn(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    return { status: response.status, ok: response.ok, text: await response.text() };
  } catch (error) {
    throw new RelayerError(`cannot reach the relayer: ${error?.cause?.code || error?.name || error}`);
  }
}

/** The default URL of a relayer path: `relayer.url` + `/v1/...`. */
const directRoute = (relayer, path) => `${String(relayer.url).replace(/\/+$/, "")}${path}`;

/**
 * Calls one relayer with an API key (Python's `SessionRelayerClient`).
 *
 * @param relayer `{ url, address }`: its URL and registered address (receipts must be signed by it).
 * @param apiKey A parsed key (`parseApiKey`).
 * @param options `fetch`, `route(relayer, "/v1/...")` (the page routes through `daimm web`),
 *   `connectTimeoutMs` (health), `timeoutMs` (predict).
 */
export class SessionRelayerClient {
  constructor(relayer, apiKey, { fetch: fetchFn = globalThis.fetch, route = directRoute,
                                 connectTimeoutMs = 2000, timeoutMs = 30_000 } = {}) {
    this.relayer = { ...relayer, address: relayer.address ? getAddress(relayer.address) : null };
    this.apiKey = apiKey;
    this.fetch = fetchFn;
    this.route = route;
    this.connectTimeoutMs = connectTimeoutMs;
    this.timeoutMs = timeoutMs;
    this.cachedInfo = null;
  }

  /** The relayer's `{ relayer, chainId, registry }` from `/v1/health` (cached), checked. */
  async info() {
    if (this.cachedInfo) return this.cachedInfo;
    const got = await send(this.fetch, this.route(this.relayer, "/v1/health"), { method: "GET" }, this.connectTimeoutMs);
    if (!got.ok) throw refusalOf(got.status, got.text);
    let info;
    try {
      const data = JSON.parse(got.text);
      info = { relayer: getAddress(data.relayer), chainId: Number(data.chain_id), registry: getAddress(data.contracts.RelayerRegistry) };
    } catch (error) {
      throw new RelayerError(`the relayer's /v1/health is malformed: ${error.message}`);
    }
    if (this.relayer.address && info.relayer !== this.relayer.address) {
      throw new RelayerError(`the relayer at this URL is ${info.relayer}, not ${this.relayer.address}`);
    }
    this.cachedInfo = info;
    return info;
  }

  /**
   * Sign `document` (`{inputs}`, `{image}`, `{text}` or `{features}`, as docs/RELAYER.md), send,
   * verify. Returns `{ outputs, predictions, receipt, answer, text, body, relayer }`.
   */
  async predict(modelId, document) {
    const info = await this.info();
    const body = JSON.stringify(document);
    const headers = await sessionHeaders(this.apiKey, info, modelId, body);
    const got = await send(this.fetch, this.route(this.relayer, `/v1/models/${modelId}/predict`), { method: "POST", body, headers }, this.timeoutMs);
    if (!got.ok) throw refusalOf(got.status, got.text);
    const { answer, receipt } = await verifyReceipt(got.text, body, { ...info, modelId });
    return { outputs: answer.outputs, predictions: answer.predictions ?? null, receipt, answer, text: got.text, body, relayer: info.relayer };
  }
}

/**
 * Calls a model through the first relayer that answers (Python's `SessionClient`).
 *
 * @param apiKey The `daimm_sk_...` string, or a parsed key.
 * @param relayers `[{ url, address }, ...]` in the order to try them.
 * @param options `connectTimeoutMs` (2000), `timeoutMs` (30000), `cooldownMs` (30000), `fetch`,
 *   `route`, `clock` (milliseconds).
 */
export class SessionClient {
  constructor(apiKey, relayers, { cooldownMs = 30_000, clock = () => Date.now(), ...options } = {}) {
    if (!relayers?.length) throw new Error("give at least one relayer ({ url, address })");
    this.apiKeyText = typeof apiKey === "string" ? apiKey : null;
    this.parsed = typeof apiKey === "string" ? null : apiKey;
    this.relayers = relayers;
    this.options = options;
    this.cooldownMs = cooldownMs;
    this.clock = clock;
    this.failedAt = new Map();
    this.clients = null;
  }

  /** The parsed API key (throws `ApiKeyError` for a malformed one). */
  async apiKey() {
    if (!this.parsed) this.parsed = await parseApiKey(this.apiKeyText);
    return this.parsed;
  }

  order() {
    const now = this.clock();
    const all = this.relayers.map((_, i) => i);
    const fresh = all.filter((i) => now - (this.failedAt.get(i) ?? -Infinity) >= this.cooldownMs);
    return [...fresh, ...all.filter((i) => !fresh.includes(i))];
  }

  /**
   * As `SessionRelayerClient.predict`, at the first relayer that answers.
   * @throws {RequestRefusedError} A refusal that is not an outage (thrown at once).
   * @throws {ReceiptError} The receipt does not verify.
   * @throws {RelayerError} No relayer answered (the message says what each did).
   */
  async predict(modelId, document) {
    const apiKey = await this.apiKey();
    this.clients ??= this.relayers.map((r) => new SessionRelayerClient(r, apiKey, this.options));
    const failures = [];
    for (const index of this.order()) {
      const where = this.relayers[index].url ?? this.relayers[index].address;
      try {
        const prediction = await this.clients[index].predict(modelId, document);
        this.failedAt.delete(index);
        return prediction;
      } catch (error) {
        if (error instanceof RequestRefusedError) {
          if (error.status !== 503 && !FAILOVER_CODES.has(error.code)) throw error;
          failures.push(`${where}: ${error.code}${error.detail ? ` (${error.detail})` : ""}`);
        } else if (error instanceof RelayerError) {
          failures.push(`${where}: ${error.message}`);
        } else {
          throw error;
        }
      }
      this.failedAt.set(index, this.clock());
    }
    throw new RelayerError(`no relayer answered: ${failures.join("; ")}`);
  }
}

const REGISTRY_ABI = [
  { type: "function", name: "relayersOf", stateMutability: "view", inputs: [{ name: "modelId", type: "uint256" }], outputs: [{ name: "", type: "address[]" }] },
  { type: "function", name: "isAuthorised", stateMutability: "view", inputs: [{ name: "modelId", type: "uint256" }, { name: "relayer", type: "address" }], outputs: [{ name: "", type: "bool" }] },
  {
    type: "function", name: "relayerOf", stateMutability: "view", inputs: [{ name: "relayer", type: "address" }],
    outputs: [{ name: "", type: "tuple", components: [
      { name: "operator", type: "address" }, { name: "x25519PublicKey", type: "bytes32" },
      { name: "endpoint", type: "string" }, { name: "active", type: "bool" },
    ] }],
  },
];

/**
 * `[{ url, address }]` of every relayer authorised for `modelId` now, in `RelayerRegistry.relayersOf`
 * order (Python's `authorised_relayers`). `client` is a viem public client.
 */
export async function authorisedRelayers(client, relayerRegistry, modelId) {
  const read = (functionName, args) => client.readContract({ address: relayerRegistry, abi: REGISTRY_ABI, functionName, args });
  const found = [];
  for (const address of await read("relayersOf", [BigInt(modelId)])) {
    if (await read("isAuthorised", [BigInt(modelId), address])) {
      const record = await read("relayerOf", [address]);
      found.push({ url: record.endpoint, address: getAddress(address) });
    }
  }
  return found;
}
