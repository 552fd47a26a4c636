// Receipts "Try it" verified, kept in this browser (localStorage) so "My licences" can list them
// and verify them again later. A saved receipt is the relayer's answer exactly as received (its
// signed receipt inside), the request body that was signed, the relayer and the model: all that
// `verifyReceipt` (tryit.js) and `daimm verify-receipt` need. Nothing leaves the browser.

export const RECEIPTS_KEY = "daimm.receipts";
/** Most receipts kept; the oldest are dropped first. */
export const MAX_RECEIPTS = 50;

/** The saved receipts, newest first ([] when none or unreadable). */
export function loadReceipts() {
  try {
    const list = JSON.parse(window.localStorage.getItem(RECEIPTS_KEY) || "[]");
    return Array.isArray(list) ? list.filter((r) => r && typeof r.text === "string") : [];
  } catch (_) {
    return [];
  }
}

/**
 * Keep a verified receipt: ``{ text, body, relayer, modelId, chainId }`` where ``text`` is the
 * relayer's answer as received and ``body`` the request body signed. Returns the saved record.
 */
export function saveReceipt(receipt) {
  let signedAt = null;
  try {
    signedAt = Number(JSON.parse(receipt.text).receipt.timestamp);
  } catch (_) {
    // kept anyway: "verify again" says what is wrong with it
  }
  const record = {
    id: `${Date.now()}-${Math.random().toString(16).slice(2, 10)}`,
    text: String(receipt.text),
    body: String(receipt.body),
    relayer: String(receipt.relayer),
    modelId: String(receipt.modelId),
    chainId: receipt.chainId == null ? null : Number(receipt.chainId),
    signedAt,
    savedAt: Math.floor(Date.now() / 1000),
  };
  const list = [record, ...loadReceipts()].slice(0, MAX_RECEIPTS);
  try {
    window.localStorage.setItem(RECEIPTS_KEY, JSON.stringify(list));
  } catch (_) {
    // storage full or disabled: the receipt is still shown on the page that verified it
  }
  return record;
}

/** Forget the receipt ``id``. */
export function removeReceipt(id) {
  const list = loadReceipts().filter((r) => r.id !== id);
  window.localStorage.setItem(RECEIPTS_KEY, JSON.stringify(list));
}
