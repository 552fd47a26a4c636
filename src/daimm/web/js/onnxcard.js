// An ONNX model's inputs and outputs read in the page (a small protobuf reader over the file's
// bytes: nothing leaves the browser), and the card `daimm model init` would write from them
// (src/daimm/modelformat/model.py init_card: tensors, guessed pipeline tag, sample input, widget).

export const PLACEHOLDER = "FILL IN";

/** A file that is not an ONNX model, or one a card cannot describe; the message says which. */
export class OnnxError extends Error {
  constructor(message) {
    super(message);
    this.name = "OnnxError";
  }
}

// ONNX TensorProto.DataType -> card dtype (docs/MODEL-CARD.md).
const ELEM_TYPES = {
  1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
  8: "string", 9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64",
};

function readVarint(buf, at) {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (at >= buf.length) throw new OnnxError("truncated varint");
    const byte = buf[at++];
    value += (byte & 0x7f) * scale;
    scale *= 128;
    if (!(byte & 0x80)) return [value, at];
  }
  throw new OnnxError("malformed varint");
}

/** The fields of one protobuf message in buf[start:end]: [{ field, wire, value | start,end }]. */
function fields(buf, start, end) {
  const out = [];
  let at = start;
  while (at < end) {
    let key;
    [key, at] = readVarint(buf, at);
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (field === 0) throw new OnnxError("field number 0");
    if (wire === 0) {
      let value;
      [value, at] = readVarint(buf, at);
      out.push({ field, wire, value });
    } else if (wire === 2) {
      let length;
      [length, at] = readVarint(buf, at);
      if (at + length > end) throw new OnnxError("a length runs past the message");
      out.push({ field, wire, start: at, end: at + length });
      at += length;
    } else if (wire === 1 || wire === 5) {
      at += wire === 1 ? 8 : 4;
    } else {
      throw new OnnxError(`wire type ${wire}`);
    }
  }
  if (at !== end) throw new OnnxError("a field runs past the message");
  return out;
}

const text = (buf, f) => new TextDecoder().decode(buf.subarray(f.start, f.end));

function typeOf(buf, f) {
  // TypeProto: tensor_type = 1 { elem_type = 1, shape = 2 { dim = 1 { dim_value = 1, dim_param = 2 } } }
  for (const t of fields(buf, f.start, f.end)) {
    if (t.field !== 1 || t.wire !== 2) {
      const kinds = { 4: "seq", 5: "map", 8: "sparse_tensor", 9: "optional" };
      return { type: `${kinds[t.field] || "other"}(...)`, dtype: null, shape: [] };
    }
    let elem = 0;
    let shape = null;
    for (const g of fields(buf, t.start, t.end)) {
      if (g.field === 1 && g.wire === 0) elem = g.value;
      if (g.field === 2 && g.wire === 2) {
        shape = [];
        for (const d of fields(buf, g.start, g.end)) {
          if (d.field !== 1 || d.wire !== 2) continue;
          let dim = null;
          for (const v of fields(buf, d.start, d.end)) {
            if (v.field === 1 && v.wire === 0 && v.value < 2 ** 53) dim = v.value;
          }
          shape.push(dim);
        }
      }
    }
    const dtype = ELEM_TYPES[elem] || null;
    return { type: `tensor(${dtype || elem})`, dtype, shape: shape || [] };
  }
  return { type: "unknown", dtype: null, shape: [] };
}

/**
 * The graph inputs (initializers left out, as ONNX Runtime does) and outputs of ONNX bytes:
 * { inputs: [{name, type, dtype, shape}], outputs: [...] }.
 * @throws {OnnxError} not an ONNX model (a ModelProto with an IR version and a graph).
 */
export function readGraph(bytes) {
  const buf = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let top;
  try {
    top = fields(buf, 0, buf.length);
  } catch (error) {
    throw new OnnxError(`this file is not an ONNX model (it does not parse as one: ${error.message}); export your model to .onnx first`);
  }
  const ir = top.find((f) => f.field === 1 && f.wire === 0);
  const graph = top.find((f) => f.field === 7 && f.wire === 2);
  if (!ir || !graph) {
    throw new OnnxError("this file is not an ONNX model (no IR version or graph in it); export your model to .onnx first");
  }
  const initializers = new Set();
  const raw = { inputs: [], outputs: [] };
  for (const f of fields(buf, graph.start, graph.end)) {
    if (f.wire !== 2) continue;
    if (f.field === 5) {
      const name = fields(buf, f.start, f.end).find((g) => g.field === 8 && g.wire === 2);
      if (name) initializers.add(text(buf, name));
    } else if (f.field === 11 || f.field === 12) {
      let name = "";
      let type = { type: "unknown", dtype: null, shape: [] };
      for (const g of fields(buf, f.start, f.end)) {
        if (g.field === 1 && g.wire === 2) name = text(buf, g);
        if (g.field === 2 && g.wire === 2) type = typeOf(buf, g);
      }
      (f.field === 11 ? raw.inputs : raw.outputs).push({ name, ...type });
    }
  }
  const inputs = raw.inputs.filter((i) => !initializers.has(i.name));
  if (!inputs.length || !raw.outputs.length) {
    throw new OnnxError("this ONNX model declares no graph input or output; a relayer cannot serve it");
  }
  return { inputs, outputs: raw.outputs };
}

function guess(graph) {
  const first = graph.inputs[0];
  if (first.dtype === "string") {
    return ["text-classification", { [first.name]: { type: "text", mode: "string" } }];
  }
  if (first.shape.length === 4 && ["float32", "float64", "float16", "uint8"].includes(first.dtype)) {
    const [, a, b, c] = first.shape;
    const nchw = a === 1 || a === 3 || !(c === 1 || c === 3);
    const [channels, h, w] = nchw ? [a, b, c] : [c, a, b];
    const prep = {
      type: "image",
      size: [h || 224, w || 224],
      channels: channels === 1 || channels === 3 ? channels : 3,
      layout: nchw ? "NCHW" : "NHWC",
      resize: "stretch",
      scale: 1 / 255,
      mean: [0.0],
      std: [1.0],
    };
    return ["image-classification", { [first.name]: prep }];
  }
  const classifier =
    graph.outputs.some((o) => o.dtype === "int64" || o.dtype === "string" || !o.type.startsWith("tensor(")) ||
    graph.outputs.some((o) => o.shape.length === 2 && (o.shape[1] || 0) > 1);
  return [classifier ? "tabular-classification" : "tabular-regression", {}];
}

function filled(shape, value) {
  if (!shape.length) return value;
  const [n, ...rest] = shape;
  return Array.from({ length: n }, () => filled(rest, value));
}

function sample(spec, prep) {
  if (spec.dtype === "string") return filled(spec.shape.map((d) => d || 1), "hello");
  let shape = spec.shape.map((d) => d || 1);
  if (prep?.type === "image") {
    const [h, w] = prep.size;
    shape = prep.layout === "NCHW" ? [1, prep.channels, h, w] : [1, h, w, prep.channels];
  }
  return filled(shape, spec.dtype?.startsWith("float") ? 0.5 : 0);
}

function greyPng(prep) {
  const [h, w] = prep.size;
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "rgb(128,128,128)";
  ctx.fillRect(0, 0, w, h);
  return canvas.toDataURL("image/png");
}

/** The card `daimm model init` writes for this graph (fields only the creator knows hold PLACEHOLDER). */
export function initCard(graph, name = null) {
  for (const spec of [...graph.inputs, ...graph.outputs]) {
    if (!spec.dtype) {
      throw new OnnxError(
        `tensor '${spec.name}' has type ${spec.type}, which a card cannot describe; export classifiers` +
          " without ZipMap (skl2onnx: options={'zipmap': False})",
      );
    }
  }
  const [tag, preprocessing] = guess(graph);
  const card = {
    name: name || `${PLACEHOLDER}: the model's name`,
    description: `${PLACEHOLDER}: what the model does, how it was trained, its limits`,
    pipeline_tag: tag,
    framework: "onnx",
    tags: [],
    license: `${PLACEHOLDER}: e.g. apache-2.0`,
    inputs: graph.inputs.map((s) => ({
      name: s.name, dtype: s.dtype, shape: s.shape,
      ...(preprocessing[s.name] ? { preprocessing: preprocessing[s.name] } : {}),
    })),
    outputs: graph.outputs.map((s) => ({ name: s.name, dtype: s.dtype, shape: s.shape })),
    sample_input: Object.fromEntries(graph.inputs.map((s) => [s.name, sample(s, preprocessing[s.name])])),
    metrics: [{ type: "accuracy", value: 0.0, dataset: `${PLACEHOLDER}: the data set and split it was measured on` }],
  };
  if (tag.endsWith("classification")) {
    const scores = graph.outputs.find((o) => o.dtype?.startsWith("float") && o.shape.length === 2 && o.shape[1]);
    if (scores) card.labels = Array.from({ length: scores.shape[1] }, (_, i) => `${PLACEHOLDER}: class ${i}`);
  }
  const first = graph.inputs[0];
  if (tag.startsWith("tabular")) {
    if (graph.inputs.length === 1 && first.shape.length === 2 && first.shape[1]) {
      card.features = Array.from({ length: first.shape[1] }, (_, i) => `${PLACEHOLDER}: feature ${i}`);
      card.widget = [{ example_title: "sample", structured_data: Object.fromEntries(card.features.map((f) => [f, 0.5])) }];
    }
  } else if (tag === "image-classification") {
    card.widget = [{ example_title: "grey square", src: greyPng(preprocessing[first.name]) }];
  } else if (tag === "text-classification") {
    card.widget = [{ example_title: "sample", text: "hello" }];
  }
  return card;
}

const TYPED = {
  float32: Float32Array, float64: Float64Array, int8: Int8Array, int16: Int16Array, int32: Int32Array,
  uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array, int64: BigInt64Array, uint64: BigUint64Array,
  bool: Uint8Array,
};

function shapeOf(value) {
  const shape = [];
  let v = value;
  while (Array.isArray(v)) {
    shape.push(v.length);
    v = v[0];
  }
  return shape;
}

/**
 * Run the card's sample input through ONNX Runtime Web (`ort`, served by daimm from /static):
 * returns { name: { dims, data (first values) } } per output.
 * @throws {OnnxError} the model does not load, or the sample does not run; the message says why.
 */
export async function runSample(ort, bytes, card) {
  let session;
  try {
    session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
  } catch (error) {
    throw new OnnxError(`ONNX Runtime cannot load this model: ${error.message || error}`);
  }
  const feeds = {};
  const sampleInput = card.sample_input || {};
  for (const spec of card.inputs || []) {
    const value = sampleInput[spec.name];
    if (value === undefined) throw new OnnxError(`sample_input has no value for the input '${spec.name}'`);
    const dims = shapeOf(value);
    const flat = dims.length ? value.flat(dims.length) : [value];
    if (spec.dtype === "string") {
      feeds[spec.name] = new ort.Tensor("string", flat.map(String), dims);
      continue;
    }
    const Typed = TYPED[spec.dtype];
    if (!Typed) throw new OnnxError(`the page cannot run a ${spec.dtype} input ('${spec.name}')`);
    const big = Typed === BigInt64Array || Typed === BigUint64Array;
    let data;
    try {
      data = Typed.from(flat, (x) => (big ? BigInt(Math.trunc(Number(x))) : spec.dtype === "bool" ? Number(Boolean(x)) : Number(x)));
    } catch (error) {
      throw new OnnxError(`sample_input['${spec.name}'] is not a nested list of numbers (${error.message})`);
    }
    feeds[spec.name] = new ort.Tensor(spec.dtype === "bool" ? "bool" : spec.dtype === "float64" ? "float64" : spec.dtype, data, dims);
  }
  let results;
  try {
    results = await session.run(feeds);
  } catch (error) {
    throw new OnnxError(`the card's sample input does not run on this model: ${error.message || error}`);
  } finally {
    await session.release?.();
  }
  const out = {};
  for (const [name, tensor] of Object.entries(results)) {
    out[name] = { dims: [...tensor.dims], data: Array.from(tensor.data.slice(0, 8), (x) => (typeof x === "bigint" ? Number(x) : x)) };
  }
  return out;
}
