// The "Try it" widgets: the input a model card's pipeline_tag asks for (a picture, with a drawing
// pad for tiny grey images; a sentence; a form of named features), turned into the request body
// the relayer reads (docs/RELAYER.md, "Request and answer format"), and the answer shown as
// labelled bars. The template (model.html) renders the widget's markup; this module wires it.

/** Base64 of bytes (chunked: String.fromCharCode takes a bounded number of arguments). */
export function toBase64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}

function dataUriBase64(uri) {
  const at = uri.indexOf(";base64,");
  return at < 0 ? null : uri.slice(at + ";base64,".length);
}

// ------------------------------------------------------------------------------------ image
function setupImage(section) {
  const state = { b64: null, name: "" };
  const preview = section.querySelector("#widget-preview");
  const hint = section.querySelector("#widget-image-name");
  const drop = section.querySelector("#widget-drop");
  const show = (b64, uri, name) => {
    state.b64 = b64;
    state.name = name;
    preview.src = uri;
    preview.hidden = false;
    hint.textContent = name;
  };
  const readFile = async (file) => {
    if (!file) return;
    const bytes = new Uint8Array(await file.arrayBuffer());
    const b64 = toBase64(bytes);
    // NOTE: no check here of what the file is: the relayer decides, and its refusal is shown.
    show(b64, `data:${file.type || "application/octet-stream"};base64,${b64}`, `${file.name} (${bytes.length.toLocaleString()} bytes)`);
  };
  section.querySelector("#widget-file").addEventListener("change", (event) => readFile(event.target.files[0]));
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    readFile(event.dataTransfer.files[0]);
  });
  for (const button of section.querySelectorAll(".widget-example")) {
    button.addEventListener("click", () => show(dataUriBase64(button.dataset.src), button.dataset.src, button.textContent));
  }
  const canvas = section.querySelector("#widget-pad");
  if (canvas) setupPad(canvas, section.querySelector("#widget-pad-clear"), (uri) => show(dataUriBase64(uri), uri, "your drawing"));
  return () => {
    if (!state.b64) throw new Error("Drop a picture, choose a file, pick an example or draw first.");
    return { image: { b64: state.b64 } };
  };
}

/**
 * A drawing pad: dark strokes on white. Each finished stroke sends ``onDrawn`` a PNG of the ink's
 * bounding box, centred on a white square with a margin, so a small digit drawn in a corner
 * reaches the model as the training images look (the digit filling the frame).
 */
export function setupPad(canvas, clearButton, onDrawn) {
  const ctx = canvas.getContext("2d");
  const clear = () => {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
  };
  clear();
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.lineWidth = Math.max(8, canvas.width / 12);
  ctx.strokeStyle = "#000";
  let drawing = false;
  const at = (event) => {
    const box = canvas.getBoundingClientRect();
    return [((event.clientX - box.left) * canvas.width) / box.width, ((event.clientY - box.top) * canvas.height) / box.height];
  };
  canvas.addEventListener("pointerdown", (event) => {
    drawing = true;
    canvas.setPointerCapture?.(event.pointerId);
    const [x, y] = at(event);
    ctx.beginPath();
    ctx.moveTo(x, y);
    ctx.lineTo(x + 0.01, y);
    ctx.stroke();
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    const [x, y] = at(event);
    ctx.lineTo(x, y);
    ctx.stroke();
  });
  const end = () => {
    if (!drawing) return;
    drawing = false;
    const uri = croppedInk(canvas);
    if (uri) onDrawn(uri);
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointerleave", end);
  clearButton?.addEventListener("click", clear);
}

function croppedInk(canvas) {
  const { width, height } = canvas;
  const pixels = canvas.getContext("2d").getImageData(0, 0, width, height).data;
  let [x0, y0, x1, y1] = [width, height, -1, -1];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (pixels[(y * width + x) * 4] < 128) {
        x0 = Math.min(x0, x);
        x1 = Math.max(x1, x);
        y0 = Math.min(y0, y);
        y1 = Math.max(y1, y);
      }
    }
  }
  if (x1 < 0) return null;
  const side = Math.max(x1 - x0, y1 - y0) + 1;
  const out = document.createElement("canvas");
  const size = 64;
  const margin = 4;
  out.width = out.height = size;
  const ctx = out.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, size, size);
  const scale = (size - 2 * margin) / side;
  const w = (x1 - x0 + 1) * scale;
  const h = (y1 - y0 + 1) * scale;
  ctx.drawImage(canvas, x0, y0, x1 - x0 + 1, y1 - y0 + 1, (size - w) / 2, (size - h) / 2, w, h);
  return out.toDataURL("image/png");
}

// ------------------------------------------------------------------------------------ text, form
function setupText(section) {
  const box = section.querySelector("#widget-text");
  for (const button of section.querySelectorAll(".widget-example")) {
    button.addEventListener("click", () => {
      box.value = button.dataset.text;
    });
  }
  // NOTE: an empty text is sent as it is: the relayer's refusal says what is wrong.
  return () => ({ text: box.value });
}

function setupForm(section) {
  return () => {
    const features = {};
    for (const input of section.querySelectorAll("input[data-feature]")) {
      // An empty field is left out, so the relayer names the missing feature.
      if (input.value.trim() !== "") features[input.dataset.feature] = Number(input.value);
    }
    return { features };
  };
}

/**
 * The request body builder of this page's widget: a function returning the body document, or
 * null when the page shows only the raw JSON box.
 */
export function setupWidget(root = document) {
  const section = root.getElementById ? root.getElementById("try-it") : null;
  if (!section) return null;
  const kind = section.dataset.widget;
  if (kind === "image") return setupImage(section);
  if (kind === "text") return setupText(section);
  if (kind === "tabular") return setupForm(section);
  return null;
}

/** Show ``[{label, score}]`` (one row's predictions) as labelled bars, best first. */
export function showPredictions(container, rows) {
  container.replaceChildren();
  if (!rows || !rows.length) {
    container.hidden = true;
    return;
  }
  const first = rows[0];
  for (const [i, { label, score }] of first.entries()) {
    const row = document.createElement("div");
    row.className = i === 0 ? "bar-row best" : "bar-row";
    row.dataset.label = label;
    const name = document.createElement("span");
    name.className = "bar-label";
    name.textContent = label;
    const bar = document.createElement("span");
    bar.className = "bar";
    const fill = document.createElement("span");
    fill.style.width = `${Math.max(0, Math.min(1, Number(score))) * 100}%`;
    bar.append(fill);
    const value = document.createElement("span");
    value.className = "bar-score";
    value.textContent = Number(score).toFixed(2);
    row.append(name, bar, value);
    container.append(row);
  }
  if (rows.length > 1) {
    const more = document.createElement("p");
    more.className = "muted small";
    more.textContent = `(the first of ${rows.length} rows; all are in the outputs below)`;
    container.append(more);
  }
  container.hidden = false;
}
