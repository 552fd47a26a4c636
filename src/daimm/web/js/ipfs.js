// Kubo-identical CIDs in the browser (Helia's ipfs-unixfs-importer with `daimm ipfs add`'s
// options), the blocks gathered as a CAR v1 Blob, and the signed upload to `daimm web`.
// Blocks are kept as Blob parts (outside the JS heap), so a large file stays within bounded memory.
import { sha256 } from "@noble/hashes/sha256";
import { importer } from "ipfs-unixfs-importer";
import { fixedSize } from "ipfs-unixfs-importer/chunker";
import { balanced } from "ipfs-unixfs-importer/layout";
import { bytesToHex, getAddress } from "viem";
import { concatBytes, encryptBlob } from "./aead.js";

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

/**
 * The CAR of `added` (results of addBlob) cut into pieces of at most `pieceBytes`, each holding
 * whole sections (the first starts with the header), as Blobs: what `uploadInPieces` sends.
 */
export function carPieces(added, pieceBytes) {
  const pieces = [];
  let current = [carHeader(added.map((a) => a.cid))];
  let size = current[0].length;
  for (const section of added.flatMap((a) => a.sections)) {
    if (section.size > pieceBytes) throw new RangeError(`a block of ${section.size} bytes does not fit in a piece of ${pieceBytes}`);
    if (size + section.size > pieceBytes) {
      pieces.push(new Blob(current));
      current = [];
      size = 0;
    }
    current.push(section);
    size += section.size;
  }
  pieces.push(new Blob(current));
  return pieces;
}

async function answerOf(response) {
  const answer = await response.json().catch(() => ({ detail: `HTTP ${response.status}` }));
  if (!response.ok) {
    const error = new Error(answer.detail || `upload refused (HTTP ${response.status})`);
    error.code = answer.error;
    error.status = response.status;
    throw error;
  }
  return answer;
}

// Signs the `UploadSession` over `digests` (each piece's SHA-256, in order) and opens it on the
// server; the session's URL.
async function openUploadSession(digests, size, { provider, account, config, baseUrl, deadlineS }) {
  const uploader = getAddress(account);
  const piecesHash = new Uint8Array(await crypto.subtle.digest("SHA-256", concatBytes(...digests)));
  const message = {
    uploader, piecesHash: bytesToHex(piecesHash), pieces: String(digests.length), size: String(size),
    nonce: BigInt(bytesToHex(crypto.getRandomValues(new Uint8Array(16)))).toString(),
    deadline: String(Math.floor(Date.now() / 1000) + deadlineS),
  };
  const signature = await provider.request({
    method: "eth_signTypedData_v4", params: [uploader, JSON.stringify(uploadSessionTypedData(message, config))],
  });
  const opened = await answerOf(await fetch(`${baseUrl}/api/uploads/sessions`, {
    method: "POST",
    headers: {
      "content-type": "application/json", "x-daimm-uploader": uploader, "x-daimm-nonce": message.nonce,
      "x-daimm-deadline": message.deadline, "x-daimm-signature": signature,
    },
    body: JSON.stringify({ size, pieces: digests.map((d) => bytesToHex(d).slice(2)) }),
  }));
  return `${baseUrl}/api/uploads/sessions/${opened.session}`;
}

/**
 * Upload the CAR of `added` (results of addBlob) to `daimm web` in pieces, with one wallet
 * signature (EIP-712 `UploadSession` over the pieces' SHA-256 digests): no request body is larger
 * than the server's piece limit (GET /api/uploads/limits, or `pieceBytes`), and the page holds one
 * piece at a time. `onProgress(sentBytes, totalBytes)` after each piece. A piece that fails in
 * transit is sent again (up to `retries` times). Returns the server's JSON ({roots, blocks, bytes,
 * quota_left}); throws an Error with the server's detail (and `code`) otherwise, after abandoning
 * the session.
 */
export async function uploadInPieces(added, { provider, account, config, baseUrl = "", deadlineS = 3600, pieceBytes, onProgress, retries = 2 }) {
  const limit = pieceBytes ?? (await answerOf(await fetch(`${baseUrl}/api/uploads/limits`))).piece_bytes;
  const pieces = carPieces(added, limit);
  const digests = [];
  for (const piece of pieces) digests.push(new Uint8Array(await crypto.subtle.digest("SHA-256", await piece.arrayBuffer())));
  const size = pieces.reduce((n, p) => n + p.size, 0);
  const session = await openUploadSession(digests, size, { provider, account, config, baseUrl, deadlineS });
  try {
    let sent = 0;
    for (let n = 0; n < pieces.length; n++) {
      for (let attempt = 0; ; attempt++) {
        try {
          await answerOf(await fetch(`${session}/pieces/${n}`, { method: "PUT", body: pieces[n] }));
          break;
        } catch (error) {
          if (attempt > 0 && error.code === "replayed_piece") break; // the lost answer's piece is in
          const transient = error.code === undefined || error.code === "piece_mismatch";
          if (!transient || attempt >= retries) throw error;
        }
      }
      sent += pieces[n].size;
      onProgress?.(sent, size);
    }
    return await answerOf(await fetch(`${session}/commit`, { method: "POST" }));
  } catch (error) {
    await fetch(session, { method: "DELETE" }).catch(() => {});
    throw error;
  }
}

/** The `UploadSession` EIP-712 document, as daimm.eip712.upload_session_typed_data. */
export function uploadSessionTypedData(message, config) {
  const document = uploadTypedData({}, config);
  return {
    ...document,
    types: {
      EIP712Domain: document.types.EIP712Domain,
      UploadSession: [
        { name: "uploader", type: "address" },
        { name: "piecesHash", type: "bytes32" },
        { name: "pieces", type: "uint256" },
        { name: "size", type: "uint256" },
        { name: "nonce", type: "uint256" },
        { name: "deadline", type: "uint256" },
      ],
    },
    primaryType: "UploadSession",
    message,
  };
}

// An async iterable fed by `push` (which waits while `limit` items are unread): the bridge from
// encryptBlob's sink to the importer's source.
function channel(limit = 8) {
  const items = [];
  let wake = null;
  let space = null;
  let closed = false;
  let failure = null;
  const signal = () => {
    wake?.();
    wake = null;
  };
  return {
    async push(item) {
      while (items.length >= limit) await new Promise((resolve) => (space = resolve));
      items.push(item);
      signal();
    },
    close(error = null) {
      closed = true;
      failure = error;
      signal();
    },
    async *[Symbol.asyncIterator]() {
      for (;;) {
        if (items.length) {
          const item = items.shift();
          space?.();
          space = null;
          yield item;
        } else if (closed) {
          if (failure) throw failure;
          return;
        } else {
          await new Promise((resolve) => (wake = resolve));
        }
      }
    },
  };
}

// Encrypt `file` (deterministic given key, salt and nonce prefix) straight into the importer;
// `onSection(bytes)` gets each distinct block's CAR section, in order. Returns the root CID.
async function encryptedDag(file, contentKey, associatedData, aeadOptions, addOpts, onSection) {
  const source = channel();
  const producing = encryptBlob(file, (bytes) => source.push(bytes), contentKey, associatedData, aeadOptions)
    .then(() => source.close(), (error) => source.close(error));
  const seen = new Set();
  let queue = Promise.resolve();
  const store = {
    async put(cid, bytes) {
      const key = cid.toString();
      if (!seen.has(key)) {
        seen.add(key);
        const section = concatBytes(varint(cid.bytes.length + bytes.length), cid.bytes, bytes);
        queue = queue.then(() => onSection(section)); // one at a time, in the order of the puts
        await queue;
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
  // NOTE: one block written at a time, so both passes put the blocks in the same order (with
  // concurrent writes the order follows which hash finishes first).
  const options = { ...addOptions(addOpts), blockWriteConcurrency: 1 };
  for await (const entry of importer([{ content: source }], store, options)) cid = entry.cid;
  await producing;
  return cid;
}

// Cuts a stream of CAR sections into pieces of at most `pieceBytes`; `emit(bytes)` per piece.
function pieceCutter(pieceBytes, emit) {
  let parts = [];
  let size = 0;
  const flush = async () => {
    const piece = parts.length ? concatBytes(...parts) : null;
    parts = []; // NOTE: the sections are let go before the piece is sent: one copy held, not two
    size = 0;
    if (piece) await emit(piece);
  };
  return {
    async add(section) {
      if (section.length > pieceBytes) throw new RangeError(`a block of ${section.length} bytes does not fit in a piece of ${pieceBytes}`);
      if (size + section.length > pieceBytes) await flush();
      parts.push(section);
      size += section.length;
    },
    flush,
  };
}

/**
 * Encrypt `file` and upload it, with the small `others` (Blobs: key envelope, card; added with
 * addBlob), in pieces, without ever keeping the ciphertext: a first pass encrypts and hashes (the
 * CIDs and each piece's SHA-256; nothing kept), the wallet signs the `UploadSession`, and a second
 * pass encrypts again (the same bytes: same key, salt and nonce prefix) and sends each piece as
 * soon as it is cut. Page memory: a piece and a few segments, whatever the file size.
 * `others` may also be a function of the ciphertext's root CID (called between the passes, for a
 * card that names the weights). `onProgress(phase, doneBytes, totalBytes)`: phase "hash"
 * after each segment encrypted in pass 1 (plaintext bytes), then "upload" after each piece sent
 * (CAR bytes). Returns `{ answer, cids }` (cids: the ciphertext's, then the others').
 */
export async function encryptAndUploadInPieces(file, contentKey, associatedData, others, { provider, account, config, baseUrl = "", deadlineS = 3600, pieceBytes, addOptions: addOpts = { cidVersion: 1 }, segmentSize, onProgress }) {
  const limit = pieceBytes ?? (await answerOf(await fetch(`${baseUrl}/api/uploads/limits`))).piece_bytes;
  const aeadOptions = {
    segmentSize,
    salt: crypto.getRandomValues(new Uint8Array(32)),
    noncePrefix: crypto.getRandomValues(new Uint8Array(7)),
  };
  // Pass 1: the pieces' digests and sizes.
  const digests = [];
  let size = 0;
  const hashing = pieceCutter(limit, async (piece) => {
    digests.push(new Uint8Array(await crypto.subtle.digest("SHA-256", piece)));
    size += piece.length;
  });
  const passOne = { ...aeadOptions, onProgress: (done, total) => onProgress?.("hash", done, total) };
  const root = await encryptedDag(file, contentKey, associatedData, passOne, addOpts, (s) => hashing.add(s));
  const added = [];
  for (const other of typeof others === "function" ? await others(root) : others) added.push(await addBlob(other, addOpts));
  const tail = added.flatMap((a) => a.sections);
  for (const section of tail) await hashing.add(new Uint8Array(await section.arrayBuffer()));
  await hashing.flush();
  const header = carHeader([root, ...added.map((a) => a.cid)]);
  digests.unshift(new Uint8Array(await crypto.subtle.digest("SHA-256", header)));
  size += header.length;
  const session = await openUploadSession(digests, size, { provider, account, config, baseUrl, deadlineS });
  // Pass 2: the same pieces, each sent as soon as it is cut.
  try {
    let n = 0;
    let sent = 0;
    const send = async (piece) => {
      await answerOf(await fetch(`${session}/pieces/${n}`, { method: "PUT", body: piece }));
      n++;
      sent += piece.length;
      onProgress?.("upload", sent, size);
    };
    await send(header);
    const sending = pieceCutter(limit, send);
    const again = await encryptedDag(file, contentKey, associatedData, aeadOptions, addOpts, (s) => sending.add(s));
    if (again.toString() !== root.toString()) throw new Error("the file changed between the two passes; pick it again");
    for (const section of tail) await sending.add(new Uint8Array(await section.arrayBuffer()));
    await sending.flush();
    const answer = await answerOf(await fetch(`${session}/commit`, { method: "POST" }));
    return { answer, cids: [root, ...added.map((a) => a.cid)].map((c) => c.toString()) };
  } catch (error) {
    await fetch(session, { method: "DELETE" }).catch(() => {});
    throw error;
  }
}
