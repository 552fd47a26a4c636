"""The table of subcommands: name, where it lives, one line of help."""

from daimm.cli import register

register("version", "daimm.cli.info:version", "Print the daimm version.")
register("ipfs", "daimm.cli.ipfs:ipfs", "Add, fetch and pin files by CID (Kubo-compatible).")
register("keys", "daimm.cli.keys:keys", "Create X25519 key pairs for receiving model keys.")
register("pack", "daimm.cli.pack:pack", "Encrypt and decrypt model packages.")
register("catalog", "daimm.cli.catalog:catalog", "Sync and inspect the local model catalog.")
register("search", "daimm.cli.search:search", "Search the catalog by text, task, price, rating.")
register("stats", "daimm.cli.stats:stats", "A model's revenue, sales, calls and ratings.")
register("model", "daimm.cli.model:model", "Publish encrypted ONNX models and versions; show one.")
register("offer", "daimm.cli.offer:offer", "Set or show a model's prices (rent, buy, per call).")
register("split", "daimm.cli.offer:split", "Split a model's revenue among payees.")
register("rent", "daimm.cli.rent:rent", "Rent a model for some periods (or extend a rental).")
register("buy", "daimm.cli.buy:buy", "Buy a perpetual licence for a model.")
register("withdraw", "daimm.cli.withdraw:withdraw", "Settle and withdraw what you are owed.")
register("credit", "daimm.cli.credit:credit", "Pay-per-use credit: deposit, reclaim, show.")
register("review", "daimm.cli.review:review", "Rate a model you hold a licence for.")
register("dispute", "daimm.cli.dispute:dispute", "Open a dispute, or resolve one as the arbiter.")
register("token", "daimm.cli.token:token", "Token balances, approvals and transfers.")
register("relayer", "daimm.cli.relayer:relayer", "Run an inference relayer (serve).")
register("verify-receipt", "daimm.cli.receipts:verify_receipt", "Check a relayer's receipt.")
register(
    "verify-proof", "daimm.cli.zk:verify_proof", "Check a zero-knowledge proof of a prediction."
)
register("infer", "daimm.cli.infer:infer", "Call a relayer: sign, predict, verify the receipt.")
register("web", "daimm.cli.web:web", "Serve the catalog in a browser (wallet: rent, buy, try).")
register("up", "daimm.cli.up:up", "Start a local marketplace (chain, relayer, web) until Ctrl-C.")
