"""One provisioning path: a model published with its offer and its relayers in one call.

`daimm model publish ... --rent ... --authorise RELAYER`, `daimm up` (:mod:`daimm.stack`), `make
demo` and the tests provision models through :func:`plan_provision` (or :func:`publish_model`,
which plans and executes), and set up a relayer's registration through :func:`ensure_relayer`.

The order is what makes one call safe:

1. **Checks**, before anything is stored or sent: every relayer is a well-formed address,
   registered, not retired and registered with a valid X25519 key; the offer's currency is
   allowed and its terms consistent; the card and the model pass validation (the relayer's own
   load and request path). A failure raises and leaves nothing behind.
2. **Storage**: ciphertext, the creator's key envelope, the metadata and one key envelope per
   relayer, by CID, in the given backend.
3. **Transactions**: the mint, one ``authorise`` per relayer, then the offer.

NOTE: the offer goes last, so a model is never for sale before its relayers can serve it. If a
transaction after the mint fails, the model is listed (its blocks are stored, so the catalog reads
its card) but not for sale, and :class:`~daimm.errors.PartialProvisionError` says how to finish.

Example:
    >>> result = publish_model(market, "iris.onnx", parse_metadata(card), backend=store,
    ...                        creator_key=key, sender=creator, offer=sample_offer(aimt),
    ...                        relayers=[relayer_address])
    >>> result.model_id, result.relayers
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daimm.errors import ConfigError, DaimmError, PartialProvisionError
from daimm.market._tx import Plan, checksum, first_event, tx_hash
from daimm.market.types import Authorisation, Offer, PublishedModel

if TYPE_CHECKING:
    from ape.api.accounts import AccountAPI
    from ape.api.transactions import ReceiptAPI
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from daimm.ipfs import Backend
    from daimm.market.marketplace import Marketplace
    from daimm.market.publishing import PreparedPackage
    from daimm.modelformat import ModelCard

__all__ = [
    "SAMPLE_PERPETUAL_PRICE",
    "SAMPLE_PRICE_PER_CALL",
    "SAMPLE_RENT_PER_HOUR",
    "ProvisionPlan",
    "ProvisionedModel",
    "RelayerSetup",
    "authorise_relayer_for",
    "ensure_relayer",
    "plan_provision",
    "publish_model",
    "sample_offer",
]

_UNIT = 10**18
HOUR = 3600
#: The offer `daimm up` and `make demo` give the sample models, in AIMT's smallest unit: 2 AIMT
#: an hour (1 to 720 hours), 100 AIMT for a perpetual licence, 0.1 AIMT a call.
SAMPLE_RENT_PER_HOUR = 2 * _UNIT
SAMPLE_PERPETUAL_PRICE = 100 * _UNIT
SAMPLE_PRICE_PER_CALL = _UNIT // 10


def sample_offer(currency: str) -> Offer:
    """The sample models' offer (see :data:`SAMPLE_RENT_PER_HOUR`), priced in ``currency``.

    Args:
        currency: The address of an 18-decimal currency (AIMT in `daimm up` and the demo).
    """
    return Offer(
        currency=checksum(currency),
        price_per_period=SAMPLE_RENT_PER_HOUR,
        period_seconds=HOUR,
        min_periods=1,
        max_periods=720,
        active=True,
        perpetual_price=SAMPLE_PERPETUAL_PRICE,
        price_per_call=SAMPLE_PRICE_PER_CALL,
    )


@dataclass(frozen=True)
class ProvisionedModel:
    """A model published, its relayers authorised and its offer set.

    Attributes:
        model_id: The minted model's id.
        creator: Who minted it (and owns it).
        weights_cid: CID of the encrypted weights.
        metadata_cid: CID of the stored card (with its ``daimm`` section).
        envelope_cid: CID of the creator's key envelope.
        weights_size: Ciphertext size, in bytes.
        tx_hash: The mint's transaction hash.
        offer: The offer as the escrow holds it now, or None if none was asked for.
        authorisations: One per relayer, in the order given.
    """

    model_id: int
    creator: str
    weights_cid: str
    metadata_cid: str
    envelope_cid: str
    weights_size: int
    tx_hash: str
    offer: Offer | None = None
    authorisations: tuple[Authorisation, ...] = field(default=())

    @property
    def relayers(self) -> tuple[str, ...]:
        """The relayers authorised for the model."""
        return tuple(a.relayer for a in self.authorisations)


@dataclass(frozen=True)
class ProvisionPlan(Plan[ProvisionedModel]):
    """The transactions of :func:`plan_provision`: mint, authorise each relayer, set the offer.

    ``execute`` checks the minted id against the one the ciphertext is bound to before it sends
    the rest, and turns a failure after the mint into :class:`PartialProvisionError`.

    Attributes:
        package: What was stored (CIDs and the model id the weights are bound to).
        relayer_addresses: The relayers to authorise, in order.
        minted: Builds the mint's result from its receipt.
    """

    package: PreparedPackage | None = None
    relayer_addresses: tuple[str, ...] = ()
    minted: Any = None

    def execute(self) -> ProvisionedModel:
        """Mint, check the id, then authorise and offer; see the class docstring.

        Raises:
            ValidationError: Another model took the id first (nothing more is sent).
            TransactionError: The mint reverted (nothing is on chain).
            PartialProvisionError: A later transaction failed; the model is minted, not offered.
        """
        from daimm.market.publishing import check_minted_id

        assert self.package is not None
        receipts = [self.steps[0].send()]
        published: PublishedModel = self.minted(receipts)
        check_minted_id(self.package, published)
        for index, step in enumerate(self.steps[1:]):
            try:
                receipts.append(step.send())
            except DaimmError as exc:
                raise PartialProvisionError(
                    _unfinished(published.model_id, self.relayer_addresses, index, exc),
                    published.model_id,
                ) from exc
        return self.parse(receipts)


def _unfinished(model_id: int, relayers: tuple[str, ...], failed: int, exc: Exception) -> str:
    """What to say when transaction ``failed`` (0-based, after the mint) did not go through."""
    left = [f"`daimm relayer authorise {model_id} {r}`" for r in relayers[failed:]]
    left.append(f"`daimm offer set {model_id} ...`")
    return (
        f"model {model_id} is published and its blocks stored, but it is not for sale yet:"
        f" {exc}. Finish with " + ", then ".join(left)
    )


def plan_provision(
    market: Marketplace,
    model_path: str | Path,
    metadata: ModelCard,
    *,
    backend: Backend,
    creator_key: X25519PrivateKey,
    sender: AccountAPI,
    royalty_bps: int = 0,
    offer: Offer | None = None,
    relayers: Iterable[Any] = (),
) -> ProvisionPlan:
    """Check everything, store the model and its envelopes, and plan mint, authorise and offer.

    Args:
        market: The marketplace.
        model_path: The plaintext ONNX file.
        metadata: Its checked card.
        backend: Where the blocks go (the block store the relayers read).
        creator_key: The creator's X25519 key; the content key is wrapped for it too.
        sender: The creator's account, which mints, authorises and offers.
        royalty_bps: Royalty on licence resales, basis points.
        offer: The terms of sale, set last; None to set none.
        relayers: Registered relayers' addresses (or accounts) to authorise.

    Raises:
        ValidationError: A relayer that is not an address; a bad card, or a model that fails
            validation (nothing stored).
        PreflightError: A relayer unregistered, retired or with a malformed key; an offer in a
            currency that is not allowed or with inconsistent terms (nothing stored).
    """
    from daimm.crypto import PublicKey, generate_content_key, wrap_key
    from daimm.ipfs import add_file
    from daimm.market.publishing import prepare_package, read_model_bytes, validate_model

    # One entry per relayer, in the order given (a relayer named twice is authorised once).
    infos = list({i.address: i for i in map(market.relayers.require_servable, relayers)}.values())
    if offer is not None:
        market.escrow.check_offer(offer)
    validate_model(read_model_bytes(model_path), metadata)
    model_id = market.models.count() + 1
    content_key = generate_content_key()
    package = prepare_package(
        model_path,
        metadata,
        backend=backend,
        creator_key=creator_key,
        model_id=model_id,
        version=0,
        content_key=content_key,
    )
    envelopes = [
        str(
            add_file(
                io.BytesIO(wrap_key(content_key, [PublicKey(i.x25519_public_key)]).to_json()),
                backend,
            ).cid
        )
        for i in infos
    ]
    mint = market.models.plan_publish(
        package.weights_cid, package.metadata_cid, royalty_bps=royalty_bps, sender=sender
    )
    steps = list(mint.steps)
    for info, envelope_cid in zip(infos, envelopes, strict=True):
        steps.append(
            market.relayers._step(
                f"authorise relayer {info.address} for model {model_id}",
                "authorise",
                model_id,
                info.address,
                envelope_cid,
                sender=sender,
            )
        )
    if offer is not None:
        steps.append(
            market.escrow._step(
                f"set the offer of model {model_id}",
                "setOffer",
                model_id,
                offer.as_tuple(),
                sender=sender,
            )
        )
    addresses = tuple(i.address for i in infos)

    def parse(receipts: Sequence[ReceiptAPI]) -> ProvisionedModel:
        published = mint.parse(receipts[:1])
        authorisations = []
        for receipt in receipts[1 : 1 + len(addresses)]:
            event = first_event(receipt, market.relayers.contract, "RelayerAuthorised")
            authorisations.append(
                Authorisation(
                    int(event.modelId),
                    checksum(event.relayer),
                    str(event.envelopeCid),
                    tx_hash(receipt),
                )
            )
        return ProvisionedModel(
            model_id=published.model_id,
            creator=published.creator,
            weights_cid=published.weights_cid,
            metadata_cid=published.metadata_cid,
            envelope_cid=package.envelope_cid,
            weights_size=package.weights_size,
            tx_hash=published.tx_hash,
            offer=None if offer is None else market.escrow.offer(published.model_id),
            authorisations=tuple(authorisations),
        )

    what = [f"publish model {model_id}"]
    if addresses:
        what.append(f"authorise {len(addresses)} relayer(s)")
    if offer is not None:
        what.append("set its offer")
    return ProvisionPlan(
        ", ".join(what),
        tuple(steps),
        parse,
        package=package,
        relayer_addresses=addresses,
        minted=mint.parse,
    )


def publish_model(
    market: Marketplace,
    model_path: str | Path,
    metadata: ModelCard,
    *,
    backend: Backend,
    creator_key: X25519PrivateKey,
    sender: AccountAPI,
    royalty_bps: int = 0,
    offer: Offer | None = None,
    relayers: Iterable[Any] = (),
) -> ProvisionedModel:
    """Publish a model with its offer and authorised relayers; see :func:`plan_provision`."""
    return plan_provision(
        market,
        model_path,
        metadata,
        backend=backend,
        creator_key=creator_key,
        sender=sender,
        royalty_bps=royalty_bps,
        offer=offer,
        relayers=relayers,
    ).execute()


def authorise_relayer_for(
    market: Marketplace,
    model_ids: Iterable[int],
    relayer: Any,
    *,
    backend: Backend,
    creator_key: X25519PrivateKey,
    sender: AccountAPI,
) -> list[int]:
    """Authorise ``relayer`` for each of ``model_ids`` it is not authorised for yet.

    Returns:
        The ids it was authorised for now.

    Raises:
        NotOwnerError, PreflightError, CryptoError: See
            :func:`daimm.market.publishing.plan_authorise_relayer`.
    """
    from daimm.market.publishing import plan_authorise_relayer

    done = []
    for model_id in model_ids:
        if market.relayers.is_authorised(model_id, relayer):
            continue
        _, plan = plan_authorise_relayer(
            market, model_id, relayer, backend=backend, creator_key=creator_key, sender=sender
        )
        plan.execute()
        done.append(model_id)
    return done


@dataclass(frozen=True)
class RelayerSetup:
    """A relayer registered on chain with the X25519 key kept in ``key_file``.

    Attributes:
        address: The relayer's signing address.
        endpoint: The endpoint it is registered at.
        key_file: Its X25519 key file (mode 0600).
        registered_now: Whether :func:`ensure_relayer` registered it (False: it already was).
    """

    address: str
    endpoint: str
    key_file: Path
    registered_now: bool


def ensure_relayer(
    market: Marketplace,
    relayer: AccountAPI,
    endpoint: str,
    key_file: str | Path,
    *,
    sender: AccountAPI | None = None,
) -> RelayerSetup:
    """Make sure ``relayer`` is registered with the X25519 key in ``key_file``.

    A relayer not registered yet gets a fresh key, written to ``key_file``, and is registered at
    ``endpoint``; one already registered keeps its registration if ``key_file`` holds its key.

    Args:
        market: The marketplace.
        relayer: The relayer's account (its signing address).
        endpoint: Its HTTP(S) endpoint, used when it registers now.
        key_file: Where its X25519 key is (or is to be) kept.
        sender: The operator that registers it (default: the relayer itself).

    Raises:
        ConfigError: It is registered with another key than ``key_file``'s, or the file is gone.
        PreflightError, ValidationError: From :meth:`Relayers.plan_register`.
    """
    from daimm.crypto import generate_private_key, load_private_key, public_key_of, save_private_key

    path = Path(key_file)
    address = checksum(relayer)
    registered = market.relayers.relayer(address)
    if registered is not None:
        if not path.exists():
            raise ConfigError(
                f"relayer {address} is registered but its X25519 key file {path} is missing:"
                " restore it, or use another account"
            )
        if public_key_of(load_private_key(path)).raw != registered.x25519_public_key:
            raise ConfigError(
                f"relayer {address} is registered with another X25519 key than {path}: restore"
                " that key file, or use a fresh state folder and account"
            )
        return RelayerSetup(address, registered.endpoint, path, False)
    key = generate_private_key()
    save_private_key(path, key, overwrite=True)
    market.relayers.register(address, public_key_of(key).raw, endpoint, sender=sender or relayer)
    return RelayerSetup(address, endpoint, path, True)
