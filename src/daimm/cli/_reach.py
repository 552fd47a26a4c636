"""Whether the blocks a model needs are where its relayer reads them.

A model is listed from chain events, but served only if its relayer can fetch the encrypted weights
and the metadata by CID from the block store it reads. These checks catch the newcomer's trap of a
`daimm up` stack (whose relayer reads ``<state>/blocks``) and a second terminal writing to
``~/.daimm/blocks``: publishing and authorising refuse a store the stack's relayer cannot read, and
renting and buying refuse a model whose blocks that relayer cannot fetch, before anything is paid.

NOTE: without a running `daimm up` stack the CLI cannot know which store a relayer reads (relayers
do not publish it), so it says where blocks went instead (:func:`note_local_store`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from daimm.errors import ConfigError

__all__ = [
    "check_store_reaches_relayer",
    "note_local_store",
    "require_model_blocks",
    "require_servable",
]


def check_store_reaches_relayer(store: str, kubo: str | None, deployments: str | None) -> None:
    """Refuse to write blocks where the relayer of a running `daimm up` cannot read them.

    A `daimm up` stack's relayer and catalog read its own block store (``<state>/blocks``); a
    command run from another terminal without ``DAIMM_STORE`` would otherwise write to
    ``~/.daimm/blocks``, and the model would be listed but never served.

    Args:
        store: The local store folder the command would use.
        kubo: The Kubo URL it would use instead (then nothing is checked: a Kubo node is shared).
        deployments: The deployments file it uses (the stack is found beside it).

    Raises:
        ConfigError: A stack runs on this deployment and ``store`` is not its block store.
    """
    from daimm.stack import running_stack

    if kubo:
        return
    stack = running_stack(deployments)
    if stack is None or not stack.store:
        return
    if Path(store).expanduser().resolve() != Path(stack.store).resolve():
        raise ConfigError(
            f"the relayer of `daimm up` ({stack.relayer_url}) reads blocks from {stack.store}, but"
            f" this command would store them in {Path(store).expanduser()}, out of its reach:"
            f" export DAIMM_STORE={stack.store} (or pass --store {stack.store}) and run it again"
        )


def note_local_store(store: str, kubo: str | None) -> None:
    """Say on stderr where blocks went when they went to a local folder, and who can read it."""
    if kubo:
        return
    click.echo(
        f"Note: the blocks are in the local folder {Path(store).expanduser()}: only a relayer"
        " and a catalog reading that folder (relayer storage_path, --store, DAIMM_STORE) can"
        " fetch them; publish through --kubo to reach IPFS.",
        err=True,
    )


def require_model_blocks(market: Any, model_id: int, backend: Any, where: str) -> None:
    """Refuse to authorise a relayer for a model whose weights or metadata are not in the store
    the command uses: the relayer reading the same store could not serve it either."""
    missing = _missing_block(market, model_id, backend)
    if missing is not None:
        what, cid = missing
        raise ConfigError(
            f"model {model_id}'s {what} {cid} are not in {where}, so a relayer reading it could"
            " not serve the model: use the store the model was published to (--store,"
            " DAIMM_STORE or --kubo)"
        )


def require_servable(market: Any, model_id: int, deployments: str | None) -> None:
    """Refuse to rent or buy a model the relayer of a running `daimm up` cannot serve.

    Raises:
        ConfigError: The model's weights or metadata are not in the stack's block store.
    """
    from daimm.ipfs import LocalBlockstore
    from daimm.stack import running_stack

    stack = running_stack(deployments)
    if stack is None or not stack.store:
        return
    missing = _missing_block(market, model_id, LocalBlockstore(stack.store))
    if missing is not None:
        what, cid = missing
        raise ConfigError(
            f"model {model_id} cannot be served: its {what} {cid} are not in {stack.store}, the"
            " block store of the `daimm up` relayer, so every prediction would fail; nothing was"
            f" paid. The creator must publish it again with DAIMM_STORE={stack.store}"
        )


def _missing_block(market: Any, model_id: int, backend: Any) -> tuple[str, str] | None:
    """``(what, cid)`` of the first of the model's latest weights and metadata whose root block
    ``backend`` lacks (a malformed CID counts as missing), or None when both are there."""
    from daimm.errors import DaimmError
    from daimm.ipfs import CID

    latest = market.models.model(model_id).latest
    for what, cid in (("weights", latest.weights_cid), ("metadata", latest.metadata_cid)):
        try:
            present = bool(backend.has_block(CID.parse(cid)))
        except (DaimmError, ValueError):
            present = False
        if not present:
            return what, cid
    return None
