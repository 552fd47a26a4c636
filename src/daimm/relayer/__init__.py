"""The inference relayer: serves ONNX predictions only to wallets the chain says may have them.

Modules: ``settings`` (config file + ``DAIMM_RELAYER_*``), ``chain`` (the one fail-closed chain
reader, log watcher and redeem sender), ``access`` (rate limits, signatures, licences, vouchers),
``vouchers`` (SQLite nonces and vouchers, batch redeemer), ``sessions`` (session-key checks and
per-session call counts), ``models``/``worker`` (validated ONNX in
worker processes), ``edge`` (body depth and read deadlines before the app trusts a request),
``app`` (FastAPI), ``runner`` (build and serve). Heavy modules load lazily:
import what you need from the submodule.
"""

__all__ = [
    "access",
    "app",
    "chain",
    "edge",
    "models",
    "runner",
    "sessions",
    "settings",
    "vouchers",
    "worker",
]
