// The creator's dashboard: what is owed and what has matured, read on chain, and the withdraw
// button (settle each matured held payment that pays this address, then withdraw), enabled only
// after the dispute window, as `daimm withdraw` does (src/daimm/market/escrow.py plan_withdraw).
import { getAddress } from "viem";
import { currencyOf, walletClient } from "./chain.js";
import { amount, explain, isRpcOutage, say, showRpcBanner } from "./errors.js";
import { onWalletChange, wallet } from "./wallet.js";

const MSG = "withdraw-message";

function when(seconds) {
  return new Date(Number(seconds) * 1000).toISOString().replace("T", " ").slice(0, 16) + " UTC";
}

/** Per currency: owed now, held buckets that matured (to settle first), and what is still held. */
async function balances(config, data, address) {
  const client = config.publicClient;
  const escrow = { address: config.contracts.RentalEscrow, abi: config.abi("RentalEscrow") };
  const block = await client.getBlock();
  const now = block.timestamp;
  const treasury = getAddress(await client.readContract({ ...escrow, functionName: "treasury" }));
  const out = [];
  for (const info of Object.values(config.currencies)) {
    const currency = currencyOf(config, info.address);
    const owed = await client.readContract({ ...escrow, functionName: "owed", args: [address, info.address] });
    const matured = [];
    let heldUntil = null;
    let heldAmount = 0n;
    for (const bucket of data.held) {
      if (bucket.currency.toLowerCase() !== info.address.toLowerCase()) continue;
      const key = [BigInt(bucket.payee_set), bucket.currency, BigInt(bucket.release_at)];
      const [held, fee] = await client.readContract({ ...escrow, functionName: "held", args: key });
      if (held === 0n && fee === 0n) continue;
      const [payees, bps] = await client.readContract({ ...escrow, functionName: "payeesOf", args: [key[0]] });
      const index = payees.findIndex((p) => getAddress(p) === address);
      if (index < 0 && address !== treasury) continue;
      const share = index < 0 ? fee : ((held - fee) * BigInt(bps[index])) / 10000n;
      if (key[2] <= now) {
        matured.push({ key, share });
      } else {
        heldAmount += share;
        heldUntil = heldUntil === null || key[2] < heldUntil ? key[2] : heldUntil;
      }
    }
    if (owed === 0n && matured.length === 0 && heldAmount === 0n) continue;
    out.push({ currency, owed, matured, heldAmount, heldUntil });
  }
  return { now, rows: out };
}

function renderBalances(state) {
  const node = document.getElementById("balances");
  node.innerHTML = "";
  if (!state.rows.length) {
    node.textContent = "Nothing held or owed to this address.";
    return;
  }
  const table = document.createElement("table");
  table.className = "grid";
  table.id = "balances-table";
  table.innerHTML = "<tr><th>currency</th><th>withdrawable</th><th>still held</th></tr>";
  for (const row of state.rows) {
    const ready = row.owed + row.matured.reduce((sum, m) => sum + m.share, 0n);
    const tr = document.createElement("tr");
    const cells = [
      row.currency.symbol,
      amount(ready, row.currency),
      row.heldAmount > 0n ? `${amount(row.heldAmount, row.currency)} until ${when(row.heldUntil)}` : "-",
    ];
    for (const text of cells) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    table.append(tr);
  }
  node.append(table);
}

export function setupDashboard(config, data) {
  const button = document.getElementById("withdraw-button");
  if (!data) {
    // No address in the URL: show the connected wallet's dashboard.
    onWalletChange((w) => {
      if (w.account) window.location.replace(`/dashboard?address=${w.account}`);
    });
    return;
  }
  const address = getAddress(data.address);
  let state = null;
  const refresh = async () => {
    button.disabled = true;
    if (!wallet.account) {
      button.textContent = "Connect this wallet to withdraw";
      return;
    }
    if (getAddress(wallet.account) !== address) {
      button.textContent = "Withdraw (connect this dashboard's address)";
      say(MSG, `The connected wallet is ${wallet.account}, not ${address}: only the payee can withdraw.`, "err");
      return;
    }
    if (!wallet.onRightChain) {
      button.textContent = `Withdraw (switch to chain ${config.chain_id})`;
      return;
    }
    try {
      state = await balances(config, data, address);
    } catch (error) {
      if (isRpcOutage(error)) showRpcBanner();
      document.getElementById("balances").textContent = "Cannot read balances now: the chain is not answering.";
      return;
    }
    renderBalances(state);
    const ready = state.rows.filter((r) => r.owed > 0n || r.matured.length);
    button.disabled = ready.length === 0;
    if (ready.length) {
      button.textContent = `Withdraw ${ready.map((r) => r.currency.symbol).join(", ")}`;
    } else {
      const next = state.rows.map((r) => r.heldUntil).filter((t) => t !== null).sort()[0];
      button.textContent = next ? `Held until ${when(next)} (dispute window)` : "Nothing to withdraw";
    }
  };
  onWalletChange(refresh);

  button.addEventListener("click", async () => {
    button.disabled = true;
    const client = config.publicClient;
    const wc = walletClient(config);
    const escrow = { address: config.contracts.RentalEscrow, abi: config.abi("RentalEscrow") };
    const done = [];
    try {
      for (const row of state.rows.filter((r) => r.owed > 0n || r.matured.length)) {
        for (const { key } of row.matured) {
          const { request } = await client.simulateContract({ ...escrow, functionName: "settle", args: key, account: address });
          say(MSG, `Settle the payments released at ${when(key[2])}: confirm in your wallet…`);
          const hash = await wc.writeContract(request);
          await client.waitForTransactionReceipt({ hash });
        }
        const { request, result } = await client.simulateContract({
          ...escrow, functionName: "withdraw", args: [row.currency.address], account: address,
        });
        say(MSG, `Withdraw ${amount(result, row.currency)}: confirm in your wallet…`);
        const hash = await wc.writeContract(request);
        const receipt = await client.waitForTransactionReceipt({ hash });
        if (receipt.status !== "success") throw new Error(`the withdrawal ${hash} failed`);
        done.push(amount(result, row.currency));
      }
      say(MSG, `Withdrawn: ${done.join(", ")}.`, "ok");
    } catch (error) {
      say(MSG, explain(error, { errors: config.errors }), "err");
    } finally {
      await refresh();
    }
  });
}
