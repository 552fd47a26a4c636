// "Write a review" on the model page, as `daimm review` does: the comment is stored by its CID
// first (a CAR of one UnixFS file, uploaded to `daimm web` under the wallet's EIP-712 Upload
// signature: ipfs.js), then the wallet sends ReviewRegistry.review(licence, rating, cid), simulated
// first so a revert is named. Only a holder of a licence of this model not reviewed yet sees the
// form; the comments shown above it were fetched and verified against their CIDs by the server.
import { parseEventLogs } from "viem";
import { walletClient } from "./chain.js";
import { explain, say } from "./errors.js";
import { addBlob, carBlob, uploadCar } from "./ipfs.js";
import { onWalletChange, wallet } from "./wallet.js";

const MSG = "review-message";
const MAX_COMMENT_BYTES = 4096;
let reviewAbi = null;

async function registry(config) {
  if (!config.contracts.ReviewRegistry) throw new Error("This marketplace has no ReviewRegistry.");
  if (!reviewAbi) {
    const response = await fetch("/api/abis/ReviewRegistry");
    if (!response.ok) throw new Error(`the server has no ReviewRegistry ABI (${response.status})`);
    reviewAbi = [...(await response.json()).filter((item) => item.type !== "error"), ...config.errors];
  }
  return { address: config.contracts.ReviewRegistry, abi: reviewAbi };
}

/** The first licence of this model the wallet holds and has not reviewed, or null. */
async function reviewableLicence(config, modelId) {
  const response = await fetch(`/api/holders/${wallet.account}`);
  if (!response.ok) return null;
  const { licences } = await response.json();
  const contract = await registry(config);
  for (const licence of licences.filter((l) => String(l.model_id) === String(modelId))) {
    const done = await config.publicClient.readContract({ ...contract, functionName: "reviewed", args: [BigInt(licence.licence_id)] });
    if (!done) return licence;
  }
  return null;
}

async function storeComment(config, text) {
  const bytes = new TextEncoder().encode(text);
  if (bytes.length > MAX_COMMENT_BYTES) throw new Error(`The comment is ${bytes.length} bytes; keep it under 4 KiB.`);
  say(MSG, "Sign the comment's upload in your wallet…");
  const added = await addBlob(new Blob([bytes]));
  const answer = await uploadCar(carBlob([added]), { provider: window.ethereum, account: wallet.account, config });
  return answer.roots[0].cid;
}

async function postReview(config, licence) {
  const rating = Number.parseInt(document.getElementById("review-rating").value, 10);
  const text = document.getElementById("review-comment").value.trim();
  const contract = await registry(config);
  const account = wallet.account;
  // Pre-flight before storing anything (the holder and the one-review rule), as `daimm review`.
  await config.publicClient.simulateContract({ ...contract, functionName: "review", args: [BigInt(licence.licence_id), rating, ""], account });
  const cid = text ? await storeComment(config, text) : "";
  const { request } = await config.publicClient.simulateContract({
    ...contract, functionName: "review", args: [BigInt(licence.licence_id), rating, cid], account,
  });
  say(MSG, "Sign the review in your wallet…");
  const hash = await walletClient(config).writeContract(request);
  say(MSG, `Waiting for transaction ${hash.slice(0, 10)}…`);
  const receipt = await config.publicClient.waitForTransactionReceipt({ hash });
  if (receipt.status !== "success") throw new Error(`the review transaction ${hash} failed`);
  const reviewed = parseEventLogs({ abi: contract.abi, logs: receipt.logs }).find((e) => e.eventName === "Reviewed");
  return `Reviewed: ${reviewed ? reviewed.args.rating : rating}/5${cid ? `, comment ${cid}` : ""}. It shows here once the catalog has read the block.`;
}

export function setupReviews(config, data) {
  const form = document.getElementById("review-form");
  const button = document.getElementById("review-submit");
  if (!form || !button) return;
  let licence = null;
  const update = async () => {
    form.hidden = true;
    if (!wallet.account || !wallet.onRightChain) return;
    try {
      licence = await reviewableLicence(config, data.model_id);
    } catch (_) {
      licence = null;
    }
    if (!licence) return;
    document.getElementById("review-licence").textContent = `#${licence.licence_id}`;
    form.hidden = false;
  };
  onWalletChange(update);
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      say(MSG, await postReview(config, licence), "ok");
      form.hidden = true;
    } catch (error) {
      say(MSG, explain(error, { errors: config.errors }), "err");
    } finally {
      button.disabled = false;
    }
  });
}
