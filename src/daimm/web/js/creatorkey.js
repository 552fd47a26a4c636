// The creator's X25519 key without a key file: derived from the wallet's signature over a fixed
// EIP-712 message, exactly as src/daimm/crypto/keys.py `derive_private_key` and
// `daimm keys derive --account ALIAS` do (wallets sign deterministically, RFC 6979, so the same
// account gets the same key in the page and in the CLI).
import { x25519 } from "@noble/curves/ed25519";
import { hkdf } from "@noble/hashes/hkdf";
import { sha256 } from "@noble/hashes/sha256";
import { getAddress, hexToBytes, recoverTypedDataAddress } from "viem";
import { concatBytes } from "./aead.js";
import { CryptoError, formatPublicKey } from "./envelope.js";

// NOTE: must equal daimm.eip712.CREATOR_KEY_PURPOSE character for character.
export const CREATOR_KEY_PURPOSE =
  "Derive my daimm encryption key. Sign this only on a daimm page or with `daimm keys derive`:" +
  " whoever holds this signature can decrypt the models I publish.";
const INFO = new TextEncoder().encode("daimm/creator-key/v1");
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

/** The EIP-712 document (as viem's signTypedData takes it) that `account` signs. */
export function creatorKeyTypedData(account) {
  return {
    domain: { name: "daimm Creator Key", version: "1" },
    types: {
      CreatorKey: [
        { name: "account", type: "address" },
        { name: "purpose", type: "string" },
      ],
    },
    primaryType: "CreatorKey",
    message: { account: getAddress(account), purpose: CREATOR_KEY_PURPOSE },
  };
}

function toBig(bytes) {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

function toBytes32(v) {
  const out = new Uint8Array(32);
  for (let i = 31; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** HKDF-SHA256(r || low s, info "daimm/creator-key/v1") -> { privateKey, publicKey, text }. */
export function keyFromSignature(signature) {
  const sig = typeof signature === "string" ? hexToBytes(signature) : signature;
  if (sig.length !== 65) {
    throw new CryptoError(`a wallet signature is 65 bytes (r, s, v), got ${sig.length}`);
  }
  const r = toBig(sig.slice(0, 32));
  let s = toBig(sig.slice(32, 64));
  if (!(r > 0n && r < N && s > 0n && s < N)) {
    throw new CryptoError("the wallet signature's r or s is out of range: not a real signature");
  }
  if (s > N - s) s = N - s;
  const privateKey = hkdf(sha256, concatBytes(toBytes32(r), toBytes32(s)), undefined, INFO, 32);
  const publicKey = x25519.getPublicKey(privateKey);
  return { privateKey, publicKey, text: formatPublicKey(publicKey) };
}

/**
 * Ask the wallet (an EIP-1193 provider) to sign the CreatorKey message for `account`, check the
 * signature is that account's, and derive the key.
 */
export async function deriveCreatorKey(provider, account) {
  const typed = creatorKeyTypedData(account);
  const document = {
    ...typed,
    types: {
      EIP712Domain: [
        { name: "name", type: "string" },
        { name: "version", type: "string" },
      ],
      ...typed.types,
    },
  };
  const signature = await provider.request({
    method: "eth_signTypedData_v4",
    params: [typed.message.account, JSON.stringify(document)],
  });
  const signer = await recoverTypedDataAddress({ ...typed, signature });
  if (signer !== typed.message.account) {
    throw new CryptoError(`the wallet signed with ${signer}, not with ${typed.message.account}; switch the wallet's account`);
  }
  return keyFromSignature(signature);
}
