// daimm's browser module: the wallet, and the actions of the model page and the dashboard.
// Bundled by esbuild into ../static/daimm.js (`make web`); the server never signs anything.
import { loadConfig } from "./chain.js";
import { setupCredit } from "./credit.js";
import { setupDashboard } from "./dashboard.js";
import { explain, showRpcBanner } from "./errors.js";
import { setupKeysPage } from "./keys.js";
import { setupLicences } from "./licences.js";
import { setupModelPage } from "./market.js";
import { showProvableBadges } from "./proofs.js";
import { setupReviews } from "./reviews.js";
import { setupTryIt } from "./tryit.js";
import { onWalletChange, setupWallet, wallet } from "./wallet.js";

function pageData() {
  const node = document.getElementById("page-data");
  return node ? JSON.parse(node.textContent) : null;
}

async function boot() {
  let config;
  try {
    config = await loadConfig();
  } catch (error) {
    showRpcBanner(`the server's configuration could not be loaded (${error.message}).`);
    return;
  }
  const page = document.body.dataset.page;
  const data = pageData();
  if (page === "model") {
    setupModelPage(config, data);
    setupTryIt(config, data);
    setupCredit(config, data);
    setupReviews(config, data);
  } else if (page === "licences") {
    setupLicences(config);
  } else if (page === "dashboard") {
    setupDashboard(config, data);
  } else if (page === "keys") {
    setupKeysPage(config, data);
  }
  // The creator's pages (publish, the dashboard's actions) live in daimm-creator.js.
  window.daimmCreator?.setupCreatorPage?.(page, config, data, { wallet, onWalletChange });
  await setupWallet(config);
  await showProvableBadges(config).catch(() => {}); // a badge the chain cannot confirm stays hidden
  document.body.dataset.ready = "1";
}

// For the browser console and the browser tests: the config (with its clients) and the messages.
window.daimm = { loadConfig, explain };

window.addEventListener("DOMContentLoaded", () => {
  boot().catch((error) => showRpcBanner(String(error?.message || error)));
});
