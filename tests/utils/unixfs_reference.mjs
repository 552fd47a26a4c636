// The independent implementation daimm's IPFS code is checked against: Helia's npm
// `ipfs-unixfs-importer` (CIDs) and `@ipld/car` (CAR files). Nothing here is daimm code.
//
// Usage: node tests/utils/unixfs_reference.mjs JOB.json
// JOB: {"imports": [{"path", "cidVersion", "rawLeaves", "chunkSize", "maxChildrenPerNode",
//                     "profile"?, "car"?}],
//       "readCars": ["file.car", ...]}
// Prints JSON: {"cids": ["<root CID>", ...],
//               "cars": [{"roots": [...], "blocks": [{"cid", "valid"}]}, ...]}
// An import with "car" also writes every block it produced to that CAR v1 file (in the order
// the importer stored them), for daimm's reader to read.
import { createReadStream, createWriteStream } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'

import { CarReader } from '@ipld/car/reader'
import { CarWriter } from '@ipld/car/writer'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { sha256 } from 'multiformats/hashes/sha2'

// A write-only blockstore that remembers what it was given (only when a CAR is wanted).
function recordingBlockstore (keep) {
  const blocks = []
  return {
    blocks,
    async put (cid, bytes) {
      if (keep) blocks.push([cid, bytes])
      return cid
    },
    async has () { return false },
    async get () { throw new Error('write-only blockstore') }
  }
}

function optionsFor (job) {
  if (job.profile) return { profile: job.profile }
  // Kubo's `ipfs add`: fixed-size chunks, balanced layout, a single chunk is its own root.
  return {
    cidVersion: job.cidVersion,
    rawLeaves: job.rawLeaves,
    leafType: 'file',
    reduceSingleLeafToSelf: true,
    chunker: fixedSize({ chunkSize: job.chunkSize }),
    layout: balanced({ maxChildrenPerNode: job.maxChildrenPerNode })
  }
}

async function importOne (job) {
  const store = recordingBlockstore(Boolean(job.car))
  let root
  const source = [{ content: createReadStream(job.path, { highWaterMark: 1 << 20 }) }]
  for await (const entry of importer(source, store, optionsFor(job))) root = entry.cid
  if (job.car) {
    const { writer, out } = CarWriter.create([root])
    const done = pipeline(Readable.from(out), createWriteStream(job.car))
    for (const [cid, bytes] of store.blocks) await writer.put({ cid, bytes })
    await writer.close()
    await done
  }
  return root.toString()
}

async function readCar (path) {
  const reader = await CarReader.fromBytes(await readFile(path))
  const roots = (await reader.getRoots()).map((cid) => cid.toString())
  const blocks = []
  for await (const { cid, bytes } of reader.blocks()) {
    const digest = await sha256.digest(bytes)
    const valid = cid.multihash.code === sha256.code &&
      Buffer.compare(Buffer.from(digest.digest), Buffer.from(cid.multihash.digest)) === 0
    blocks.push({ cid: cid.toString(), valid })
  }
  return { roots, blocks }
}

const job = JSON.parse(await readFile(process.argv[2], 'utf8'))
const cids = []
for (const item of job.imports ?? []) cids.push(await importOne(item))
const cars = []
for (const path of job.readCars ?? []) cars.push(await readCar(path))
process.stdout.write(JSON.stringify({ cids, cars }) + '\n')
