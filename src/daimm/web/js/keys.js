// The API-key page (/keys): the wallet signs one session for a key made here; the key is shown once
// as one `daimm_sk_...` string with snippets for the CLI, Python and JavaScript; the sessions this
// browser made for the wallet are listed with "revoke" and "revoke all".
import { getAddress } from "viem";
import { explain, say } from "./errors.js";
import { remembered, revokeAllSessions, revokeSession, sessionStates, signSession } from "./sessionbook.js";
import { onWalletChange, wallet } from "./wallet.js";

const MSG = "key-message";
const LIST_MSG = "key-list-message";
let model = null; // the catalog's answer for the chosen model

async function loadModel() {
  const id = document.getElementById("key-model").value.trim();
  const select = document.getElementById("key-relayer");
  select.length = 1; // keep "any relayer"
  model = null;
  if (!id) return;
  const response = await fetch(`/api/models/${encodeURIComponent(id)}`);
  if (!response.ok) {
    say(MSG, `Model ${id} is not in the catalog.`, "err");
    return;
  }
  model = await response.json();
  for (const r of model.relayers || []) {
    const option = document.createElement("option");
    option.value = r.address;
    option.textContent = `${r.address.slice(0, 8)}… · ${r.endpoint}`;
    select.append(option);
  }
  say(MSG, "");
}

/** The snippets for `text` (the key), the model and its relayers (all, or the one chosen). */
function snippets(text, modelId, relayers) {
  const inputs = model?.metadata?.sample_input || { input: [[0]] };
  const first = relayers[0] || { endpoint: "http://127.0.0.1:8700", address: "0x..." };
  const py = relayers.map((r) => `("${r.endpoint}", "${r.address}")`).join(",\n           ");
  const js = relayers.map((r) => `  { url: "${r.endpoint}", address: "${r.address}" },`).join("\n");
  return {
    cli:
      `export DAIMM_API_KEY='${text}'\n` +
      `echo '${JSON.stringify({ inputs })}' > request.json\n` +
      `daimm infer ${modelId} --input request.json --api-key "$DAIMM_API_KEY" \\\n` +
      `    --relayer-url ${first.endpoint} --relayer ${first.address}\n` +
      `daimm session revoke "$DAIMM_API_KEY" --account YOUR_ALIAS   # the ape account that signed it (TEST::N under daimm up), when the app no longer needs it`,
    python:
      `from daimm.client import SessionClient\n\n` +
      `API_KEY = "${text}"  # a secret: better read it from an environment variable\n` +
      `# The model's relayers, tried in this order (daimm.client.authorised_relayers reads them from the chain)\n` +
      `RELAYERS = [${py}]\n\n` +
      `client = SessionClient(API_KEY, RELAYERS)\n` +
      `answer = client.predict(${modelId}, ${JSON.stringify(inputs)})  # the receipt is verified before it returns\n` +
      `print("receipt verified, signed by relayer", answer.receipt["relayer"])\n` +
      `print(answer.predictions[0] if answer.predictions else answer.outputs)\n`,
    js:
      `// daimm-session.mjs is served by daimm web at /static/daimm-session.mjs (no npm package needed)\n` +
      `import { SessionClient } from "./daimm-session.mjs";\n\n` +
      `const API_KEY = process.env.DAIMM_API_KEY ?? "${text}";\n` +
      `const client = new SessionClient(API_KEY, [\n${js}\n]);\n` +
      `const answer = await client.predict(${modelId}, { inputs: ${JSON.stringify(inputs)} });\n` +
      `console.log(answer.predictions ?? answer.outputs);\n`,
  };
}

async function createKey(config) {
  const modelId = BigInt(document.getElementById("key-model").value || 0);
  if (modelId < 1n) throw new Error("Choose a model (its id) first.");
  if (!model || BigInt(model.model_id) !== modelId) await loadModel();
  const relayer = document.getElementById("key-relayer").value || null;
  const maxCalls = BigInt(document.getElementById("key-max-calls").value || 0);
  if (maxCalls < 1n) throw new Error("A key needs at least one call.");
  say(MSG, "Sign the session in your wallet (one signature, no transaction)…");
  const key = await signSession(
    config,
    { modelId, relayer, ttlS: Number(document.getElementById("key-ttl").value), maxCalls },
    "api-key",
  );
  const relayers = (model?.relayers || []).filter((r) => !relayer || getAddress(r.address) === getAddress(relayer));
  const text = snippets(key.text, modelId, relayers);
  document.getElementById("key-value").value = key.text;
  document.getElementById("snippet-cli").textContent = text.cli;
  document.getElementById("snippet-python").textContent = text.python;
  document.getElementById("snippet-js").textContent = text.js;
  document.getElementById("key-result").hidden = false;
  say(MSG, `Key made for model ${modelId}: copy it now, it is shown once.`, "ok");
  await showList(config);
}

function when(seconds) {
  return new Date(Number(seconds) * 1000).toISOString().replace("T", " ").slice(0, 16) + " UTC";
}

async function showList(config) {
  const body = document.querySelector("#key-list tbody");
  const empty = document.getElementById("key-list-empty");
  body.innerHTML = "";
  const entries = remembered(config, wallet.account);
  empty.hidden = entries.length > 0;
  empty.textContent = wallet.account ? "No session made in this browser yet." : "Connect your wallet to see its sessions.";
  if (!entries.length) return;
  let states = entries.map(() => "?");
  try {
    states = await sessionStates(config, entries);
  } catch (error) {
    say(LIST_MSG, explain(error), "err");
  }
  entries.forEach((e, i) => {
    const row = document.createElement("tr");
    row.dataset.hash = e.hash;
    row.dataset.state = states[i];
    const cells = [
      `${e.hash.slice(0, 10)}… (${e.kind})`,
      e.modelId === "0" ? "any" : e.modelId,
      BigInt(e.relayer) === 0n ? "any" : `${e.relayer.slice(0, 8)}…`,
      when(e.expiresAt),
      e.maxCalls,
      when(e.madeAt),
      states[i],
    ];
    for (const text of cells) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.append(cell);
    }
    const action = document.createElement("td");
    if (states[i] === "live") {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "secondary key-revoke";
      button.textContent = "Revoke";
      button.addEventListener("click", () => act(config, button, () => revokeSession(config, e.hash), "Revoked."));
      action.append(button);
    }
    row.append(action);
    body.append(row);
  });
}

async function act(config, button, action, done) {
  button.disabled = true;
  try {
    say(LIST_MSG, "Confirm the transaction in your wallet…");
    const receipt = await action();
    say(LIST_MSG, `${done} (block ${receipt.blockNumber}); relayers refuse it from the next block they see.`, "ok");
    await showList(config);
  } catch (error) {
    say(LIST_MSG, explain(error), "err");
  } finally {
    button.disabled = false;
  }
}

export function setupKeysPage(config, data) {
  const input = document.getElementById("key-model");
  input.addEventListener("change", () => loadModel().catch((error) => say(MSG, explain(error), "err")));
  if (data?.model_id) loadModel().catch((error) => say(MSG, explain(error), "err"));
  const create = document.getElementById("key-create");
  create.addEventListener("click", async () => {
    create.disabled = true;
    document.getElementById("key-result").hidden = true;
    try {
      await createKey(config);
    } catch (error) {
      say(MSG, explain(error), "err");
    } finally {
      create.disabled = false;
    }
  });
  const all = document.getElementById("key-revoke-all");
  all.addEventListener("click", () => act(config, all, () => revokeAllSessions(config), "Every session revoked"));
  onWalletChange(() => showList(config).catch((error) => say(LIST_MSG, explain(error), "err")));
}
