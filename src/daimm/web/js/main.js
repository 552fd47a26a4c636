// daimm's browser module: the wallet, and the actions of the model page and the dashboard.
// Bundled by esbuild into ../static/daimm.js (`make web`); the server never signs anything.
import { loadConfig } from "./chain.js";
import { setupDashboard } from "./dashboard.js";
import { explain, showRpcBanner } from "./errors.js";
import { setupModelPage } from "./market.js";
import { setupTryIt } from "./tryit.js";
import { setupWallet } from "./wallet.js";

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
  } else if (page === "dashboard") {
    setupDashboard(config, data);
  }
  await setupWallet(config);
  document.body.dataset.ready = "1";
}

// For the browser console and the browser tests: the config (with its clients) and the messages.
window.daimm = { loadConfig, explain };

window.addEventListener("DOMContentLoaded", () => {
  boot().catch((error) => showRpcBanner(String(error?.message || error)));
});
