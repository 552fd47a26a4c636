// Kubo-identical CIDs in the browser (Helia's ipfs-unixfs-importer with `daimm ipfs add`'s
// options), the blocks gathered as a CAR v1 Blob, and the signed upload to `daimm web`.
// Blocks are kept as Blob parts (outside the JS heap), so a large file stays within bounded memory.
import { sha256 } from "@noble/hashes/sha256";
import { importer } from "ipfs-unixfs-importer";
import { fixedSize } from "ipfs-unixfs-importer/chunker";
import { balanced } from "ipfs-unixfs-importer/layout";
import { bytesToHex, getAddress } from "viem";
import { concatBytes } from "./aead.js";

const READ_CHUNK = 1 << 20;

/** The importer options of `daimm ipfs add [--cid-version 1] [--profile unixfs-v1-2025]`. */
export function addOptions({ cidVersion = 0, profile = null } = {}) {
  if (profile) return { profile };
  return {
    cidVersion,
    rawLeaves: cidVersion === 1,
    leafType: "file",
    reduceSingleLeafToSelf: true,
    chunker: fixedSize({ chunkSize: 256 * 1024 }),
    layout: balanced({ maxChildrenPerNode: 174 }),
  };
}

function varint(n) {
  const out = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return new Uint8Array(out);
}

async function* slices(blob, onProgress) {
  for (let at = 0; at < blob.size; at += READ_CHUNK) {
    yield new Uint8Array(await blob.slice(at, at + READ_CHUNK).arrayBuffer());
    onProgress?.(Math.min(at + READ_CHUNK, blob.size), blob.size);
  }
}

/**
 * Add `blob` as `daimm ipfs add` would: returns { cid, sections } where `cid` is the root CID
 * (a multiformats CID) and `sections` the CAR sections of its distinct blocks, as Blobs.
 */
export async function addBlob(blob, options = {}) {
  const seen = new Set();
  const sections = [];
  const store = {
    async put(cid, bytes) {
      const key = cid.toString();
      if (!seen.has(key)) {
        seen.add(key);
        const raw = cid.bytes;
        sections.push(new Blob([varint(raw.length + bytes.length), raw, bytes]));
      }
      return cid;
    },
    async has() {
      return false;
    },
    async get() {
      throw new Error("write-only blockstore");
    },
  };
  let cid;
  const source = [{ content: slices(blob, options.onProgress) }];
  for await (const entry of importer(source, store, addOptions(options))) cid = entry.cid;
  return { cid, sections };
}

function cborHead(major, value) {
  if (value < 24) return new Uint8Array([(major << 5) | value]);
  if (value < 256) return new Uint8Array([(major << 5) | 24, value]);
  if (value < 65536) return new Uint8Array([(major << 5) | 25, value >> 8, value & 0xff]);
  throw new RangeError("CBOR value too large for a CAR header");
}

/** The CAR v1 header (DAG-CBOR `{roots, version: 1}`), as daimm.ipfs.car.encode_header. */
export function carHeader(roots) {
  const enc = new TextEncoder();
  const parts = [cborHead(5, 2), cborHead(3, 5), enc.encode("roots"), cborHead(4, roots.length)];
  for (const root of roots) {
    const raw = concatBytes(new Uint8Array([0]), root.bytes);
    parts.push(cborHead(6, 42), cborHead(2, raw.length), raw);
  }
  parts.push(cborHead(3, 7), enc.encode("version"), cborHead(0, 1));
  const header = concatBytes(...parts);
  return concatBytes(varint(header.length), header);
}

/** One CAR v1 Blob holding the DAGs `added` (results of addBlob), their roots in order. */
export function carBlob(added) {
  return new Blob([carHeader(added.map((a) => a.cid)), ...added.flatMap((a) => a.sections)]);
}

/** SHA-256 of a Blob, streamed in 1 MiB slices. */
export async function blobSha256(blob) {
  const hash = sha256.create();
  for await (const chunk of slices(blob)) hash.update(chunk);
  return hash.digest();
}

/**
 * Upload a CAR to `daimm web` (POST /api/uploads) with the wallet's EIP-712 `Upload` signature.
 * `config` is /api/config's answer (chain id, ModelRegistry address). Returns the server's JSON
 * ({roots, blocks, bytes, quota_left}); throws an Error with the server's detail otherwise.
 */
export async function uploadCar(car, { provider, account, config, baseUrl = "", deadlineS = 600 }) {
  const uploader = getAddress(account);
  const nonce = BigInt(bytesToHex(crypto.getRandomValues(new Uint8Array(16))));
  const deadline = BigInt(Math.floor(Date.now() / 1000) + deadlineS);
  const bodyHash = bytesToHex(await blobSha256(car));
  const message = { uploader, bodyHash, size: String(car.size), nonce: nonce.toString(), deadline: deadline.toString() };
  const document = uploadTypedData(message, config);
  const signature = await provider.request({ method: "eth_signTypedData_v4", params: [uploader, JSON.stringify(document)] });
  const response = await fetch(`${baseUrl}/api/uploads`, {
    method: "POST",
    headers: {
      "content-type": "application/vnd.ipld.car",
      "x-daimm-uploader": uploader,
      "x-daimm-nonce": message.nonce,
      "x-daimm-deadline": message.deadline,
      "x-daimm-signature": signature,
    },
    body: car,
  });
  const answer = await response.json().catch(() => ({ detail: `HTTP ${response.status}` }));
  if (!response.ok) {
    const error = new Error(answer.detail || `upload refused (HTTP ${response.status})`);
    error.code = answer.error;
    throw error;
  }
  return answer;
}

/** The `Upload` EIP-712 document, as daimm.eip712.upload_typed_data. */
export function uploadTypedData(message, config) {
  return {
    types: {
      EIP712Domain: [
        { name: "name", type: "string" },
        { name: "version", type: "string" },
        { name: "chainId", type: "uint256" },
        { name: "verifyingContract", type: "address" },
      ],
      Upload: [
        { name: "uploader", type: "address" },
        { name: "bodyHash", type: "bytes32" },
        { name: "size", type: "uint256" },
        { name: "nonce", type: "uint256" },
        { name: "deadline", type: "uint256" },
      ],
    },
    primaryType: "Upload",
    domain: { name: "daimm Upload", version: "1", chainId: config.chain_id, verifyingContract: config.contracts.ModelRegistry },
    message,
  };
}
