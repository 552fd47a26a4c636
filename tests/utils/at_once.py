"""Several real processes doing one thing at the same moment (opening one new database, say)."""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
from collections.abc import Callable
from typing import Any


def _run(
    target: Callable[..., Any],
    args: tuple[Any, ...],
    start: multiprocessing.synchronize.Event,
    errors: multiprocessing.Queue,
) -> None:
    start.wait()
    try:
        target(*args)
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        errors.put(f"{type(exc).__name__}: {exc}")


def errors_at_once(
    target: Callable[..., Any], args: tuple[Any, ...], processes: int = 4
) -> list[str]:
    """Run ``target(*args)`` in ``processes`` forked processes released together; return the
    errors they raised (``"Type: message"``), and one per process that did not exit cleanly."""
    ctx = multiprocessing.get_context("fork")
    errors: multiprocessing.Queue = ctx.Queue()
    start = ctx.Event()
    procs = [ctx.Process(target=_run, args=(target, args, start, errors)) for _ in range(processes)]
    for proc in procs:
        proc.start()
    start.set()
    for proc in procs:
        proc.join(60)
    found = [f"process exited with {proc.exitcode}" for proc in procs if proc.exitcode != 0]
    while not errors.empty():
        found.append(errors.get())
    return found
