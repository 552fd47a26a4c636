// The connected wallet (any EIP-1193 provider at window.ethereum): account, chain, switching.
import { getAddress, numberToHex } from "viem";
import { explain } from "./errors.js";

const listeners = [];
export const wallet = { account: null, chainId: null, onRightChain: false };

/** Call ``fn(wallet)`` now and whenever the account or chain changes. */
export function onWalletChange(fn) {
  listeners.push(fn);
}

function notify() {
  for (const fn of listeners) fn(wallet);
}

function render(config) {
  const account = document.getElementById("wallet-account");
  const button = document.getElementById("wallet-connect");
  const banner = document.getElementById("chain-banner");
  const message = document.getElementById("chain-message");
  if (wallet.account) {
    account.textContent = `${wallet.account.slice(0, 6)}…${wallet.account.slice(-4)}`;
    account.title = wallet.account;
    button.textContent = "Connected";
    button.disabled = true;
  }
  const dashboard = document.getElementById("nav-dashboard");
  if (dashboard && wallet.account) dashboard.href = `/dashboard?address=${wallet.account}`;
  if (wallet.account && !wallet.onRightChain) {
    message.textContent =
      `Your wallet is on chain ${wallet.chainId}; this marketplace runs on chain ` +
      `${config.chain_id} (${config.network}). Switch your wallet to chain ${config.chain_id}.`;
    banner.hidden = false;
  } else {
    banner.hidden = true;
  }
}

async function refresh(config) {
  const accounts = await window.ethereum.request({ method: "eth_accounts" });
  wallet.account = accounts.length ? getAddress(accounts[0]) : null;
  wallet.chainId = Number.parseInt(await window.ethereum.request({ method: "eth_chainId" }), 16);
  wallet.onRightChain = wallet.chainId === config.chain_id;
  render(config);
  notify();
}

/** Ask the wallet to switch to the marketplace's chain (adding it if the wallet does not know it). */
async function switchChain(config) {
  const chainId = numberToHex(config.chain_id);
  try {
    await window.ethereum.request({ method: "wallet_switchEthereumChain", params: [{ chainId }] });
  } catch (error) {
    if (error?.code !== 4902) throw error;
    await window.ethereum.request({
      method: "wallet_addEthereumChain",
      params: [{ chainId, chainName: config.network, rpcUrls: [config.rpc_url],
                 nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 } }],
    });
  }
  await refresh(config);
}

export async function setupWallet(config) {
  const button = document.getElementById("wallet-connect");
  const banner = document.getElementById("wallet-banner");
  if (!window.ethereum) {
    button.disabled = true;
    banner.hidden = false;
    banner.textContent =
      "No wallet found: install a browser wallet (any EIP-1193 wallet) to rent, buy or try models. Browsing works without one.";
    notify();
    return;
  }
  button.addEventListener("click", async () => {
    try {
      await window.ethereum.request({ method: "eth_requestAccounts" });
      await refresh(config);
    } catch (error) {
      banner.hidden = false;
      banner.textContent = explain(error);
    }
  });
  document.getElementById("chain-switch").addEventListener("click", async () => {
    try {
      await switchChain(config);
    } catch (error) {
      document.getElementById("chain-message").textContent = explain(error);
    }
  });
  window.ethereum.on?.("accountsChanged", () => refresh(config));
  window.ethereum.on?.("chainChanged", () => refresh(config));
  await refresh(config);
}
