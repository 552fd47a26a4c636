// The page's view of the chain: the server's config, a public client that reads through the
// server's read-only RPC pass-through, and a wallet client over the injected EIP-1193 provider.
import { createPublicClient, createWalletClient, custom, defineChain, http } from "viem";

let cached = null;

/** The server's /api/config (chain id, contracts, ABIs, EIP-712 types), fetched once. */
export async function loadConfig() {
  if (cached) return cached;
  const response = await fetch("/api/config");
  if (!response.ok) throw new Error(`the server's /api/config answered ${response.status}`);
  const config = await response.json();
  const chain = defineChain({
    id: config.chain_id,
    name: config.network,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [config.rpc_url] } },
  });
  // NOTE: every read goes through the server (one RPC endpoint, no key in the page); no retries,
  // so an outage shows at once instead of after back-offs.
  const publicClient = createPublicClient({
    chain,
    pollingInterval: 250,
    transport: http(new URL("/api/rpc", window.location.origin).href, { retryCount: 0 }),
  });
  const errorsAbi = config.errors;
  const abi = (name) => [...config.abis[name].filter((item) => item.type !== "error"), ...errorsAbi];
  cached = { ...config, chain, publicClient, abi };
  return cached;
}

/** A wallet client over window.ethereum, or null when no wallet is injected. */
export function walletClient(config) {
  if (!window.ethereum) return null;
  return createWalletClient({ chain: config.chain, transport: custom(window.ethereum) });
}

/** The currency of an address: symbol and decimals from the config (ETH for the zero address). */
export function currencyOf(config, address) {
  for (const [symbol, info] of Object.entries(config.currencies)) {
    if (info.address.toLowerCase() === String(address).toLowerCase()) {
      return { symbol, decimals: info.decimals, address: info.address };
    }
  }
  return { symbol: String(address).slice(0, 10), decimals: 18, address };
}
