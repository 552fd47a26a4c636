// Turning what the wallet, the chain and the relayer say into one clear sentence each.
import {
  BaseError,
  ContractFunctionRevertedError,
  HttpRequestError,
  UserRejectedRequestError,
  decodeErrorResult,
  formatUnits,
} from "viem";

export function amount(value, currency) {
  return `${formatUnits(BigInt(value), currency.decimals)} ${currency.symbol}`;
}

function when(seconds) {
  return new Date(Number(seconds) * 1000).toISOString().replace("T", " ").slice(0, 16) + " UTC";
}

/** Sentences for the contracts' custom errors, by name (the ABI gives the arguments). */
function customError(name, args, context) {
  const a = args || [];
  const cur = context.currency || { symbol: "", decimals: 18 };
  const messages = {
    PriceAboveMax: () =>
      `the price is now ${amount(a[0], cur)}, above the ${amount(a[1], cur)} you accepted: reload the page to see the new price`,
    OfferInactive: () => `the owner of model ${a[0]} withdrew its offer`,
    InvalidOffer: () => `model ${a[0]} has no valid offer`,
    NotForSale: () => `model ${a[0]} is not for sale (no perpetual price)`,
    DurationOutOfRange: () => `model ${a[0]} rents for ${a[2]} to ${a[3]} periods, not ${a[1]}`,
    WrongPayment: () => `the payment sent was ${a[1]} but ${a[0]} was expected`,
    UnknownModel: () => `model ${a[0]} does not exist`,
    CurrencyNotAllowed: () => `currency ${a[0]} is not allowed by this marketplace`,
    ERC20InsufficientBalance: () =>
      `your balance is ${amount(a[1], cur)} but ${amount(a[2], cur)} is needed: fund the account`,
    ERC20InsufficientAllowance: () =>
      `the escrow may take ${amount(a[1], cur)} but ${amount(a[2], cur)} is needed: approve it first`,
    NotMatured: () => `the payments are held until ${when(a[0])} (the dispute window)`,
    NothingOwed: () => `nothing is owed to ${a[0]} in this currency yet`,
    NothingHeld: () => `nothing is held for payee set ${a[0]} released at ${when(a[2])}`,
    RentalAlreadyHeld: () => `this account already holds a rental of that model`,
  };
  const text = messages[name] ? messages[name]() : `the contract refused the transaction`;
  return `${name}: ${text}.`;
}

/** Whether the user declined in the wallet (EIP-1193 code 4001). */
export function isRejection(error) {
  if (error instanceof BaseError && error.walk((e) => e instanceof UserRejectedRequestError)) {
    return true;
  }
  return error?.code === 4001 || error?.cause?.code === 4001;
}

/** Whether the chain's RPC pass-through is down (502 from the server). */
export function isRpcOutage(error) {
  if (!(error instanceof BaseError)) return false;
  const http = error.walk((e) => e instanceof HttpRequestError);
  return Boolean(http && (http.status === 502 || http.status === 504 || http.status === undefined));
}

/** One sentence for ``error`` (a rejection, a custom error named by the ABI, an outage). */
export function explain(error, context = {}) {
  if (isRejection(error)) return "You rejected the request in your wallet: nothing was signed or sent.";
  if (isRpcOutage(error)) {
    showRpcBanner();
    return "The chain's RPC endpoint is not answering: nothing was sent. Try again in a moment.";
  }
  if (error instanceof BaseError) {
    const revert = error.walk((e) => e instanceof ContractFunctionRevertedError);
    if (revert) {
      let name = revert.data?.errorName;
      let args = revert.data?.args;
      if (!name && revert.raw && context.errors) {
        try {
          const decoded = decodeErrorResult({ abi: context.errors, data: revert.raw });
          name = decoded.errorName;
          args = decoded.args;
        } catch (_) {
          // not one of ours
        }
      }
      if (name) return customError(name, args, context);
      return `The contract refused: ${revert.reason || revert.shortMessage}.`;
    }
    return error.shortMessage || error.message;
  }
  return String(error?.message || error);
}

export function showRpcBanner(text) {
  const banner = document.getElementById("rpc-banner");
  if (!banner) return;
  banner.hidden = false;
  banner.innerHTML = "";
  const strong = document.createElement("strong");
  strong.textContent = "Chain unavailable: ";
  banner.append(strong, text || "the chain's RPC endpoint is not answering. Balances, licences and transactions cannot be checked now; reload in a moment.");
}

export function say(id, text, kind = "info") {
  const node = document.getElementById(id);
  if (!node) return;
  node.textContent = text;
  node.className = `message ${kind}`;
}
