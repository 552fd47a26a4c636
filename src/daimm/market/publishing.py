"""Publishing a model: validate it against its metadata, encrypt it, store it, and mint it.

The metadata document a creator writes (``META.json``) is the model card: its format is the JSON
Schema in ``daimm/modelformat/card.schema.json`` (``docs/MODEL-CARD.md``), and ``daimm model
init MODEL.onnx`` writes one from the model. daimm checks it against the model, through the
relayer's own load and request path (:func:`daimm.modelformat.model.check_model`), before anything
is stored. The stored document is the card plus a ``daimm`` section naming the encrypted weights,
the version and the creator's key envelope.

Keys. One random content key per model, reused for every version (each file has its own salt, so
the file keys differ); the weights of version ``v`` of model ``m`` are bound to
``model_associated_data(m, v)``. The creator's key envelope (the content key wrapped for the
creator's X25519 key) is stored by CID and named in the metadata, so the creator can later wrap the
key for a relayer (:func:`share_with_relayer`) and encrypt new versions.
"""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daimm.errors import ValidationError
from daimm.modelformat import ModelCard, load_card, parse_card
from daimm.modelformat.model import check_model

if TYPE_CHECKING:
    from ape.api.accounts import AccountAPI
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from daimm.ipfs import Backend
    from daimm.market._tx import Plan
    from daimm.market.marketplace import Marketplace
    from daimm.market.types import Authorisation, PublishedModel, PublishedVersion

__all__ = [
    "Metadata",
    "PreparedPackage",
    "load_metadata",
    "parse_metadata",
    "plan_authorise_relayer",
    "prepare_package",
    "validate_model",
]

#: A model file larger than this is not loaded whole for validation (bytes).
MAX_VALIDATE_BYTES = 2 << 30

#: A creator's checked card (the name publishing used before cards had a schema).
Metadata = ModelCard


def parse_metadata(document: Any) -> ModelCard:
    """Check a creator's card (not yet against a model); see :func:`daimm.modelformat.parse_card`.

    Raises:
        CardError: A missing, mistyped or inconsistent field, named.
    """
    return parse_card(document)


def load_metadata(path: str | Path) -> ModelCard:
    """Read and check a card file.

    Raises:
        ValidationError: Unreadable, not JSON, or a bad field (named).
    """
    return load_card(path)


def validate_model(model_bytes: bytes, metadata: ModelCard) -> dict[str, Any]:
    """Check that the card is filled in and the model loads, matches it and runs its examples.

    The model is loaded and its sample and widget examples are run exactly as a relayer would
    (:func:`daimm.modelformat.model.check_model`), so publishing refuses what a relayer refuses.

    Args:
        model_bytes: The plaintext ONNX model.
        metadata: Its checked card.

    Returns:
        Output name -> the sample's output (as nested lists), for the record.

    Raises:
        CardError: A field still holds ``daimm model init``'s placeholder.
        ModelValidationError: It does not load, a tensor's name, dtype or shape disagrees with the
            card, the sample or a widget example fails, or the labels do not match the scores.
    """
    metadata.require_filled()
    return check_model(model_bytes, metadata)


@dataclass(frozen=True)
class PreparedPackage:
    """A model encrypted and stored, with its metadata document, ready to mint.

    Attributes:
        model_id: The model id the ciphertext is bound to.
        version: The version index it is bound to.
        weights_cid: CID of the ciphertext.
        envelope_cid: CID of the creator's key envelope.
        metadata_cid: CID of the metadata document (the creator's plus the ``daimm`` section).
        weights_size: Ciphertext size, in bytes.
    """

    model_id: int
    version: int
    weights_cid: str
    envelope_cid: str
    metadata_cid: str
    weights_size: int


def _store_bytes(data: bytes, backend: Backend) -> str:
    from daimm.ipfs import add_file

    return str(add_file(io.BytesIO(data), backend).cid)


def fetch_bytes(cid: str, backend: Backend, *, max_bytes: int = 1 << 20) -> bytes:
    """Fetch a small document by CID, verified block by block.

    Raises:
        IntegrityError, StorageError: From the backend; ValidationError if it is too large.
    """
    from daimm.ipfs import CID, fetch_file

    out = io.BytesIO()
    fetch_file(CID.parse(cid), backend, out)
    data = out.getvalue()
    if len(data) > max_bytes:
        raise ValidationError(f"document {cid} is larger than {max_bytes} bytes")
    return data


def prepare_package(
    model_path: str | Path,
    metadata: Metadata,
    *,
    backend: Backend,
    creator_key: X25519PrivateKey,
    model_id: int,
    version: int,
    content_key: bytes | None = None,
    circuit_cid: str | None = None,
) -> PreparedPackage:
    """Encrypt the model, store ciphertext, creator envelope and metadata; nothing on chain yet.

    Args:
        model_path: The plaintext ONNX file (already validated).
        metadata: Its metadata.
        backend: Where blocks go (the embedded store by default in the CLI).
        creator_key: The creator's X25519 private key; the content key is wrapped for it.
        model_id: The id the model will have (bound into the ciphertext).
        version: The version index it will have.
        content_key: The model's content key for a new version; a fresh one for a new model.
        circuit_cid: A provable model's circuit description (``daimm.market.provable``), named
            in the metadata's ``daimm.circuit``.
    """
    from daimm.crypto import (
        encrypt_stream,
        generate_content_key,
        model_associated_data,
        public_key_of,
        wrap_key,
    )
    from daimm.ipfs import add_file

    key = content_key or generate_content_key()
    with tempfile.TemporaryFile() as sealed, Path(model_path).open("rb") as src:
        encrypt_stream(src, sealed, key, model_associated_data(model_id, version))
        size = sealed.tell()
        sealed.seek(0)
        weights_cid = str(add_file(sealed, backend).cid)  # type: ignore[arg-type]
    envelope = wrap_key(key, [public_key_of(creator_key)])
    envelope_cid = _store_bytes(envelope.to_json(), backend)
    document = dict(metadata.document)
    document["daimm"] = {
        "model_id": model_id,
        "version": version,
        "weights": {"cid": weights_cid, "size": size, "format": "daimm-aead-v1"},
        "key_envelope": envelope_cid,
    }
    if circuit_cid is not None:
        document["daimm"]["circuit"] = circuit_cid
    text = json.dumps(document, indent=2, sort_keys=True).encode() + b"\n"
    metadata_cid = _store_bytes(text, backend)
    return PreparedPackage(model_id, version, weights_cid, envelope_cid, metadata_cid, size)


def read_model_bytes(model_path: str | Path) -> bytes:
    """The model file's bytes, refusing ones too large to validate in memory.

    Raises:
        ValidationError: Unreadable or larger than :data:`MAX_VALIDATE_BYTES`.
    """
    path = Path(model_path)
    try:
        size = path.stat().st_size
        if size > MAX_VALIDATE_BYTES:
            raise ValidationError(f"{path} is {size} bytes; daimm validates models up to 2 GiB")
        return path.read_bytes()
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror}") from exc


def creator_content_key(
    market: Marketplace, model_id: int, backend: Backend, creator_key: X25519PrivateKey
) -> bytes:
    """Recover a model's content key from the creator's envelope named in its latest metadata.

    Raises:
        ValidationError: The metadata has no daimm section (not published by daimm).
        CryptoError: The envelope does not open with this key.
    """
    from daimm.crypto import KeyEnvelope, unwrap_key

    latest = market.models.model(model_id).latest
    try:
        document = json.loads(fetch_bytes(latest.metadata_cid, backend))
        envelope_cid = document["daimm"]["key_envelope"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValidationError(
            f"the metadata of model {model_id} ({latest.metadata_cid}) names no creator key"
            " envelope: was it published with `daimm model publish`?"
        ) from exc
    envelope = KeyEnvelope.from_json(fetch_bytes(envelope_cid, backend))
    return unwrap_key(envelope, creator_key)


def plan_publish(
    market: Marketplace,
    model_path: str | Path,
    metadata: Metadata,
    *,
    backend: Backend,
    creator_key: X25519PrivateKey,
    sender: AccountAPI,
    royalty_bps: int = 0,
    circuit_cid: str | None = None,
) -> tuple[PreparedPackage, Plan[PublishedModel]]:
    """Validate, encrypt and store a new model, and plan its mint.

    NOTE: the ciphertext is bound to the next model id (``modelCount() + 1``); if another model is
    minted first, the result's ``model_id`` differs and :func:`check_minted_id` refuses it.
    """
    validate_model(read_model_bytes(model_path), metadata)
    model_id = market.models.count() + 1
    package = prepare_package(
        model_path,
        metadata,
        backend=backend,
        creator_key=creator_key,
        model_id=model_id,
        version=0,
        circuit_cid=circuit_cid,
    )
    plan = market.models.plan_publish(
        package.weights_cid, package.metadata_cid, royalty_bps=royalty_bps, sender=sender
    )
    return package, plan


def check_minted_id(package: PreparedPackage, published: PublishedModel) -> None:
    """Raise if the minted id is not the one the ciphertext is bound to (a concurrent mint).

    Raises:
        ValidationError: With what to do: publish a new version of the minted model.
    """
    if published.model_id != package.model_id:
        raise ValidationError(
            f"another model took id {package.model_id} first; yours is model {published.model_id}"
            " but its weights are bound to the old id: run `daimm model version"
            f" {published.model_id} MODEL.onnx --meta META.json` to publish usable weights"
        )


def plan_publish_version(
    market: Marketplace,
    model_id: int,
    model_path: str | Path,
    metadata: Metadata,
    *,
    backend: Backend,
    creator_key: X25519PrivateKey,
    sender: AccountAPI,
) -> tuple[PreparedPackage, Plan[PublishedVersion]]:
    """Validate, encrypt (with the model's content key) and store a new version; plan it."""
    market.models.require_owner(model_id, sender)
    validate_model(read_model_bytes(model_path), metadata)
    content_key = creator_content_key(market, model_id, backend, creator_key)
    version = len(market.models.versions(model_id))
    package = prepare_package(
        model_path,
        metadata,
        backend=backend,
        creator_key=creator_key,
        model_id=model_id,
        version=version,
        content_key=content_key,
    )
    plan = market.models.plan_publish_version(
        model_id, package.weights_cid, package.metadata_cid, sender=sender
    )
    return package, plan


def plan_authorise_relayer(
    market: Marketplace,
    model_id: int,
    relayer: str,
    *,
    backend: Backend,
    creator_key: X25519PrivateKey,
    sender: AccountAPI,
) -> tuple[str, Plan[Authorisation]]:
    """Wrap the model's content key for a relayer's registered X25519 key and plan authorising it.

    Returns:
        The new envelope's CID and the plan (``authorise``, or ``setEnvelope`` if already).

    Raises:
        NotOwnerError: ``sender`` does not own the model.
        PreflightError: The relayer is unknown or retired.
        CryptoError: The creator key does not open the model's envelope.
    """
    from daimm.crypto import PublicKey, wrap_key

    market.models.require_owner(model_id, sender)
    info = market.relayers.require_active(relayer)
    content_key = creator_content_key(market, model_id, backend, creator_key)
    envelope = wrap_key(content_key, [PublicKey(info.x25519_public_key)])
    envelope_cid = _store_bytes(envelope.to_json(), backend)
    return envelope_cid, market.relayers.plan_authorise(
        model_id, relayer, envelope_cid, sender=sender
    )


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file (for printing what was published)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
