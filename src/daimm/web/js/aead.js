// The daimm encrypted file format (version 1), byte for byte as src/daimm/crypto/aead.py and
// docs/STORAGE.md: an 83-byte header, then AES-256-GCM segments of S plaintext bytes + 16-byte tag.
// WebCrypto does the AES-GCM and the HKDF; files are streamed (Blob.stream()), up to a window of
// segments sealed concurrently and handed to `sink` in order, so page memory stays at a few
// segments whatever the file size (collect the pieces in a Blob: its bytes live outside the JS heap).

const MAGIC = new TextEncoder().encode("DAIMMAE");
const VERSION = 1;
const KDF_LABEL = new TextEncoder().encode("daimm/aead/v1");
export const HEADER_SIZE = 83;
export const PREFIX_SIZE = 51;
export const TAG_SIZE = 16;
export const DEFAULT_SEGMENT_SIZE = 1 << 20;
export const MIN_SEGMENT_SIZE = 16;
export const MAX_SEGMENT_SIZE = 64 << 20;
const MAX_SEGMENTS = 2 ** 32;
const WINDOW = 4;
const BLOB_PART_BYTES = 16 << 20;

export class IntegrityError extends Error {
  constructor(message) {
    super(message);
    this.name = "IntegrityError";
  }
}

export function concatBytes(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function bigEndian(value, size) {
  const out = new Uint8Array(size);
  let v = BigInt(value);
  for (let i = size - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  if (v !== 0n) throw new RangeError(`${value} does not fit in ${size} bytes`);
  return out;
}

/** A fresh random 256-bit content key. */
export function generateContentKey() {
  return crypto.getRandomValues(new Uint8Array(32));
}

/** `"daimm/model\0" || model id (32 bytes) || version (8 bytes)`: binds a ciphertext to a model. */
export function modelAssociatedData(modelId, version) {
  const id = BigInt(modelId);
  const v = BigInt(version);
  if (id < 0n || id >= 2n ** 256n || v < 0n || v >= 2n ** 64n) {
    throw new RangeError("model id must be a uint256 and version a uint64");
  }
  return concatBytes(new TextEncoder().encode("daimm/model\0"), bigEndian(id, 32), bigEndian(v, 8));
}

/** Bytes of ciphertext (header included) for `plaintextSize` bytes of plaintext. */
export function ciphertextSize(plaintextSize, segmentSize = DEFAULT_SEGMENT_SIZE) {
  const segments = Math.max(1, Math.ceil(plaintextSize / segmentSize));
  return HEADER_SIZE + plaintextSize + segments * TAG_SIZE;
}

/** The 12-byte nonce of segment `index`: prefix (7) || uint32 index || last flag. */
export function segmentNonce(prefix, index, last) {
  if (!(index >= 0 && index < MAX_SEGMENTS)) {
    throw new RangeError(`segment index ${index} overflows the 32-bit counter; use a larger segment size`);
  }
  const nonce = new Uint8Array(12);
  nonce.set(prefix, 0);
  new DataView(nonce.buffer).setUint32(7, index);
  nonce[11] = last ? 1 : 0;
  return nonce;
}

function headerPrefix(segmentSize, salt, noncePrefix) {
  const out = new Uint8Array(PREFIX_SIZE);
  out.set(MAGIC, 0);
  out[7] = VERSION;
  new DataView(out.buffer).setUint32(8, segmentSize);
  out.set(salt, 12);
  out.set(noncePrefix, 44);
  return out;
}

/** Parse an 83-byte header (as Header.parse in Python); throws IntegrityError. */
export function parseHeader(raw) {
  if (raw.length < HEADER_SIZE) {
    throw new IntegrityError("ciphertext is truncated: shorter than the 83-byte header of a daimm file");
  }
  if (!MAGIC.every((b, i) => raw[i] === b)) {
    throw new IntegrityError("not a daimm encrypted file (bad magic bytes)");
  }
  if (raw[7] !== VERSION) {
    throw new IntegrityError(`encrypted file format version ${raw[7]} is not supported (this page reads version ${VERSION})`);
  }
  const segmentSize = new DataView(raw.buffer, raw.byteOffset, HEADER_SIZE).getUint32(8);
  if (segmentSize < MIN_SEGMENT_SIZE || segmentSize > MAX_SEGMENT_SIZE) {
    throw new IntegrityError(`implausible segment size ${segmentSize} in the header`);
  }
  return {
    segmentSize,
    salt: raw.slice(12, 44),
    noncePrefix: raw.slice(44, 51),
    commitment: raw.slice(51, HEADER_SIZE),
    prefix: raw.slice(0, PREFIX_SIZE),
    bytes: raw.slice(0, HEADER_SIZE),
  };
}

/** HKDF-SHA256 -> AES key (a CryptoKey) and the 32-byte key commitment. */
export async function deriveFileKey(contentKey, prefix, associatedData) {
  if (contentKey.length !== 32) throw new RangeError("a content key is 32 bytes");
  const adHash = new Uint8Array(await crypto.subtle.digest("SHA-256", associatedData));
  const ikm = await crypto.subtle.importKey("raw", contentKey, "HKDF", false, ["deriveBits"]);
  const okm = new Uint8Array(
    await crypto.subtle.deriveBits(
      { name: "HKDF", hash: "SHA-256", salt: prefix.slice(12, 44), info: concatBytes(KDF_LABEL, prefix, adHash) },
      ikm,
      512,
    ),
  );
  const key = await crypto.subtle.importKey("raw", okm.slice(0, 32), "AES-GCM", false, ["encrypt", "decrypt"]);
  return { key, commitment: okm.slice(32) };
}

async function readSlice(blob, start, end) {
  return new Uint8Array(await blob.slice(start, end).arrayBuffer());
}

/**
 * Encrypt `blob` (a File or Blob), calling `await sink(bytes)` with the header, then each sealed
 * segment in order. Returns the number of plaintext bytes. `onProgress(doneBytes, totalBytes)`
 * after each segment handed to `sink`. `window` (default 8): segments sealed concurrently.
 * Memory: one segment being assembled plus `window` sealed segments, whatever the file size.
 */
export async function encryptBlob(blob, sink, contentKey, associatedData, options = {}) {
  const segmentSize = options.segmentSize ?? DEFAULT_SEGMENT_SIZE;
  if (!(segmentSize >= MIN_SEGMENT_SIZE && segmentSize <= MAX_SEGMENT_SIZE)) {
    throw new RangeError(`segment size must be between ${MIN_SEGMENT_SIZE} and ${MAX_SEGMENT_SIZE} bytes`);
  }
  const inFlight = Math.max(1, options.window ?? WINDOW);
  const total = blob.size;
  const count = Math.max(1, Math.ceil(total / segmentSize));
  if (count > MAX_SEGMENTS) throw new RangeError("the file needs more than 2**32 segments; use a larger segment size");
  const salt = options.salt ?? crypto.getRandomValues(new Uint8Array(32));
  const noncePrefix = options.noncePrefix ?? crypto.getRandomValues(new Uint8Array(7));
  const prefix = headerPrefix(segmentSize, salt, noncePrefix);
  const { key, commitment } = await deriveFileKey(contentKey, prefix, associatedData);
  const header = concatBytes(prefix, commitment);
  await sink(header);
  // NOTE: WebCrypto copies its input when encrypt() is called (WebCrypto spec: "a copy of the
  // bytes held by data"), so a segment is sealed straight from the stream's chunk when it lies
  // inside one (a subarray view, no copy) and otherwise assembled in one reused buffer; up to
  // `inFlight` segments are sealed concurrently off the main thread and handed to `sink` in order.
  const pending = [];
  let index = 0;
  let done = 0;
  const seal = (view) => {
    const iv = segmentNonce(noncePrefix, index, index === count - 1);
    index++;
    pending.push(crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: header, tagLength: 128 }, key, view));
  };
  const drain = async (keep) => {
    while (pending.length > keep) {
      const sealed = new Uint8Array(await pending.shift());
      await sink(sealed);
      done += sealed.length - TAG_SIZE;
      options.onProgress?.(done, total);
    }
  };
  const assembly = new Uint8Array(Math.min(segmentSize, Math.max(total, 1)));
  let filled = 0;
  let read = 0;
  const reader = blob.stream().getReader();
  for (;;) {
    const { done: end, value } = await reader.read();
    if (end) break;
    read += value.length;
    if (read > total) throw new RangeError("the file grew while it was read; pick it again");
    let offset = 0;
    while (offset < value.length) {
      const want = Math.min(segmentSize, total - (index * segmentSize));
      if (filled === 0 && value.length - offset >= want) {
        seal(value.subarray(offset, offset + want));
        offset += want;
      } else {
        const n = Math.min(want - filled, value.length - offset);
        assembly.set(value.subarray(offset, offset + n), filled);
        filled += n;
        offset += n;
        if (filled === want) {
          seal(assembly.subarray(0, want));
          filled = 0;
        }
      }
      await drain(inFlight - 1);
    }
  }
  if (read !== total) throw new RangeError("the file changed while it was read; pick it again");
  if (total === 0) seal(assembly.subarray(0, 0));
  await drain(0);
  return total;
}

/**
 * A sink for `encryptBlob` / `decryptBlob` that gathers the pieces into one Blob: `{ sink,
 * blob() }`. Pieces are joined into Blob parts of about `partBytes` (default 16 MiB): Chromium
 * copies each new Blob into its blob store with a fixed cost per Blob, so a few large parts are
 * several times cheaper than one per segment. Memory: at most `partBytes` of pieces in the page.
 */
export function blobSink(partBytes = BLOB_PART_BYTES) {
  const parts = [];
  let pending = [];
  let size = 0;
  const flush = () => {
    if (pending.length) parts.push(new Blob(pending));
    pending = [];
    size = 0;
  };
  return {
    async sink(bytes) {
      pending.push(bytes);
      size += bytes.length;
      if (size >= partBytes) flush();
    },
    blob(type = "") {
      flush();
      return new Blob(parts, { type });
    },
  };
}

/**
 * Decrypt a daimm ciphertext `blob`, verifying each segment before `await sink(plaintext)`.
 * Throws IntegrityError for a wrong key or associated data, or any tampering (as in Python,
 * plaintext of earlier segments may already have reached `sink`: keep it only if this returns).
 */
export async function decryptBlob(blob, sink, contentKey, associatedData, options = {}) {
  const header = parseHeader(await readSlice(blob, 0, HEADER_SIZE));
  const { key, commitment } = await deriveFileKey(contentKey, header.prefix, associatedData);
  let diff = 0;
  for (let i = 0; i < 32; i++) diff |= commitment[i] ^ header.commitment[i];
  if (diff !== 0) {
    throw new IntegrityError(
      "key commitment mismatch: wrong key, or this ciphertext belongs to another model or version (or its header was altered); nothing was decrypted",
    );
  }
  const body = blob.size - HEADER_SIZE;
  if (body <= 0) throw new IntegrityError("ciphertext is truncated: no segment follows the header");
  const sealedSize = header.segmentSize + TAG_SIZE;
  const count = Math.ceil(body / sealedSize);
  let total = 0;
  for (let index = 0; index < count; index++) {
    const start = HEADER_SIZE + index * sealedSize;
    const sealed = await readSlice(blob, start, Math.min(start + sealedSize, blob.size));
    const last = index === count - 1;
    if (sealed.length < TAG_SIZE) throw new IntegrityError(`ciphertext is truncated inside segment ${index}`);
    let plain;
    try {
      const iv = segmentNonce(header.noncePrefix, index, last);
      plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv, additionalData: header.bytes, tagLength: 128 }, key, sealed);
    } catch {
      const where = last ? "the final segment" : `segment ${index}`;
      throw new IntegrityError(
        `${where} (index ${index}) failed authentication: the ciphertext was corrupted, truncated, reordered or extended; discard everything decrypted from it`,
      );
    }
    await sink(new Uint8Array(plain));
    total += plain.byteLength;
    options.onProgress?.(start + sealed.length, blob.size);
  }
  return total;
}
