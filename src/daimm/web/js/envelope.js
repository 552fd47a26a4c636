// Key envelopes, byte for byte as src/daimm/crypto/envelope.py and docs/STORAGE.md: the content
// key wrapped for each recipient's X25519 key, in a JSON document kept apart from the ciphertext.
// Both schemes: RFC 9180 HPKE base mode (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM),
// and the X25519 + HKDF + AES-GCM fallback. X25519 and HKDF come from @noble (bundled with viem).
import { x25519 } from "@noble/curves/ed25519";
import { expand, extract } from "@noble/hashes/hkdf";
import { sha256 } from "@noble/hashes/sha256";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils";
import { concatBytes } from "./aead.js";

export const KIND = "daimm-key-envelope";
export const SCHEME_HPKE = "hpke-x25519-sha256-aes256gcm";
export const SCHEME_X25519 = "x25519-hkdf-sha256-aes256gcm";
const LABEL = new TextEncoder().encode("daimm/key-envelope/v1");
const MAX_RECIPIENTS = 1024;

export class CryptoError extends Error {
  constructor(message) {
    super(message);
    this.name = "CryptoError";
  }
}

function sharedSecret(privateKey, publicKey) {
  let shared;
  try {
    shared = x25519.getSharedSecret(privateKey, publicKey);
  } catch {
    shared = new Uint8Array(32); // noble refuses the all-zero result itself; same outcome
  }
  if (shared.every((b) => b === 0)) {
    throw new CryptoError(
      "refusing X25519 key agreement: all-zero shared secret (the public key is a low-order point, so the result would be public); ask for the recipient's real key",
    );
  }
  return shared;
}

/** Parse `x25519:<64 hex>` (the prefix may be left out), refusing malformed and low-order keys. */
export function parsePublicKey(text) {
  const body = String(text).trim().replace(/^x25519:/, "");
  if (!/^[0-9a-fA-F]{64}$/.test(body)) {
    throw new CryptoError(
      `${JSON.stringify(String(text))} is not a daimm public key: expected x25519: and 64 hex digits (as printed by \`daimm keys new\`)`,
    );
  }
  const raw = hexToBytes(body.toLowerCase());
  sharedSecret(x25519.utils.randomPrivateKey(), raw); // low-order points give zero with every key
  return raw;
}

export function formatPublicKey(raw) {
  return `x25519:${bytesToHex(raw)}`;
}

/** A fresh X25519 key pair: { privateKey, publicKey } as bytes. */
export function generateKeyPair() {
  const privateKey = x25519.utils.randomPrivateKey();
  return { privateKey, publicKey: x25519.getPublicKey(privateKey) };
}

// ---------------------------------------------------------------- RFC 9180 (base mode)
const HPKE_V1 = new TextEncoder().encode("HPKE-v1");
const KEM_SUITE = concatBytes(new TextEncoder().encode("KEM"), new Uint8Array([0x00, 0x20]));
const HPKE_SUITE = concatBytes(new TextEncoder().encode("HPKE"), new Uint8Array([0x00, 0x20, 0x00, 0x01, 0x00, 0x02]));
const text = (s) => new TextEncoder().encode(s);

function labeledExtract(suite, salt, label, ikm) {
  return extract(sha256, concatBytes(HPKE_V1, suite, text(label), ikm), salt);
}

function labeledExpand(suite, prk, label, info, length) {
  const head = new Uint8Array([length >> 8, length & 0xff]);
  return expand(sha256, prk, concatBytes(head, HPKE_V1, suite, text(label), info), length);
}

function kemSharedSecret(dh, enc, recipient) {
  const prk = labeledExtract(KEM_SUITE, new Uint8Array(0), "eae_prk", dh);
  return labeledExpand(KEM_SUITE, prk, "shared_secret", concatBytes(enc, recipient), 32);
}

function keySchedule(shared, info) {
  const empty = new Uint8Array(0);
  const context = concatBytes(
    new Uint8Array([0]),
    labeledExtract(HPKE_SUITE, empty, "psk_id_hash", empty),
    labeledExtract(HPKE_SUITE, empty, "info_hash", info),
  );
  const secret = labeledExtract(HPKE_SUITE, shared, "secret", empty);
  return {
    key: labeledExpand(HPKE_SUITE, secret, "key", context, 32),
    nonce: labeledExpand(HPKE_SUITE, secret, "base_nonce", context, 12),
  };
}

async function aesGcm(op, key, nonce, data, aad) {
  const k = await crypto.subtle.importKey("raw", key, "AES-GCM", false, [op]);
  const params = { name: "AES-GCM", iv: nonce, tagLength: 128 };
  if (aad) params.additionalData = aad;
  return new Uint8Array(await crypto.subtle[op](params, k, data));
}

function fallbackKey(shared, enc, recipient) {
  return expand(sha256, extract(sha256, shared, concatBytes(enc, recipient)), concatBytes(LABEL, recipient), 32);
}

async function wrapOne(contentKey, recipient, scheme) {
  const ephemeral = x25519.utils.randomPrivateKey();
  const enc = x25519.getPublicKey(ephemeral);
  const dh = sharedSecret(ephemeral, recipient);
  const info = concatBytes(LABEL, recipient);
  let wrapped;
  if (scheme === SCHEME_HPKE) {
    const { key, nonce } = keySchedule(kemSharedSecret(dh, enc, recipient), info);
    wrapped = await aesGcm("encrypt", key, nonce, contentKey, null);
  } else if (scheme === SCHEME_X25519) {
    wrapped = await aesGcm("encrypt", fallbackKey(dh, enc, recipient), new Uint8Array(12), contentKey, info);
  } else {
    throw new CryptoError(`unknown key envelope scheme ${JSON.stringify(scheme)}`);
  }
  return { publicKey: recipient, enc, wrappedKey: wrapped };
}

/** Wrap `contentKey` for each recipient (raw 32-byte keys or `x25519:` strings). */
export async function wrapKey(contentKey, recipients, scheme = SCHEME_HPKE) {
  if (contentKey.length !== 32) throw new CryptoError("a content key is 32 bytes");
  if (!recipients.length) throw new CryptoError("a key envelope needs at least one recipient");
  const keys = recipients.map((r) => (typeof r === "string" ? parsePublicKey(r) : parsePublicKey(bytesToHex(r))));
  const entries = [];
  for (const key of keys) entries.push(await wrapOne(contentKey, key, scheme));
  return { scheme, recipients: entries };
}

/** A new envelope that also opens for `recipient` (the ciphertext and its CID are unchanged). */
export async function addRecipient(envelope, contentKey, recipient) {
  const raw = typeof recipient === "string" ? parsePublicKey(recipient) : parsePublicKey(bytesToHex(recipient));
  if (envelope.recipients.some((r) => bytesToHex(r.publicKey) === bytesToHex(raw))) return envelope;
  return { ...envelope, recipients: [...envelope.recipients, await wrapOne(contentKey, raw, envelope.scheme)] };
}

/** Recover the content key with the recipient's 32-byte X25519 private key. */
export async function unwrapKey(envelope, privateKey) {
  const me = x25519.getPublicKey(privateKey);
  const entry = envelope.recipients.find((r) => bytesToHex(r.publicKey) === bytesToHex(me));
  if (!entry) {
    throw new CryptoError(`this key envelope has no entry for public key ${formatPublicKey(me)}; ask the creator to add you`);
  }
  const dh = sharedSecret(privateKey, entry.enc);
  const info = concatBytes(LABEL, me);
  try {
    if (envelope.scheme === SCHEME_HPKE) {
      const { key, nonce } = keySchedule(kemSharedSecret(dh, entry.enc, me), info);
      return await aesGcm("decrypt", key, nonce, entry.wrappedKey, null);
    }
    return await aesGcm("decrypt", fallbackKey(dh, entry.enc, me), new Uint8Array(12), entry.wrappedKey, info);
  } catch {
    throw new CryptoError("the wrapped key for this public key failed to authenticate: the envelope is corrupted or was tampered with");
  }
}

function b64(bytes) {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

function unb64(value, name, size) {
  let raw = null;
  if (typeof value === "string" && /^[A-Za-z0-9+/]*={0,2}$/.test(value) && value.length % 4 === 0) {
    raw = Uint8Array.from(atob(value), (c) => c.charCodeAt(0));
  }
  if (!raw || raw.length !== size) throw new CryptoError(`malformed key envelope: '${name}' must be ${size} bytes of base64`);
  return raw;
}

/** The envelope's JSON text, identical to Python's `KeyEnvelope.to_json()`. */
export function envelopeToJson(envelope) {
  const doc = {
    kind: KIND,
    version: 1,
    scheme: envelope.scheme,
    recipients: envelope.recipients.map((r) => ({
      public_key: formatPublicKey(r.publicKey),
      enc: b64(r.enc),
      wrapped_key: b64(r.wrappedKey),
    })),
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

const sameKeys = (obj, keys) => Object.keys(obj).length === keys.length && keys.every((k) => Object.hasOwn(obj, k));

/** Parse strictly, as Python's `KeyEnvelope.from_json`; throws CryptoError naming the problem. */
export function envelopeFromJson(textValue) {
  let doc;
  try {
    doc = JSON.parse(textValue);
  } catch {
    throw new CryptoError("malformed key envelope: not JSON");
  }
  if (!doc || typeof doc !== "object" || Array.isArray(doc) || doc.kind !== KIND) {
    throw new CryptoError("malformed key envelope: not a daimm key envelope");
  }
  if (doc.version !== 1) throw new CryptoError(`key envelope version ${JSON.stringify(doc.version)} is not supported`);
  if (!sameKeys(doc, ["kind", "version", "scheme", "recipients"])) {
    throw new CryptoError("malformed key envelope: unexpected or missing fields");
  }
  if (doc.scheme !== SCHEME_HPKE && doc.scheme !== SCHEME_X25519) {
    throw new CryptoError(`key envelope scheme ${JSON.stringify(doc.scheme)} is not supported`);
  }
  if (!Array.isArray(doc.recipients) || !(doc.recipients.length > 0 && doc.recipients.length <= MAX_RECIPIENTS)) {
    throw new CryptoError("malformed key envelope: recipients must be a non-empty list");
  }
  const recipients = doc.recipients.map((item) => {
    if (!item || typeof item !== "object" || !sameKeys(item, ["public_key", "enc", "wrapped_key"])) {
      throw new CryptoError("malformed key envelope: each recipient needs public_key, enc and wrapped_key");
    }
    if (typeof item.public_key !== "string") throw new CryptoError("malformed key envelope: public_key must be a string");
    return {
      publicKey: parsePublicKey(item.public_key),
      enc: unb64(item.enc, "enc", 32),
      wrappedKey: unb64(item.wrapped_key, "wrapped_key", 48),
    };
  });
  return { scheme: doc.scheme, recipients };
}
