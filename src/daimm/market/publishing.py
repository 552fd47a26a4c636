"""Publishing a model: validate it against its metadata, encrypt it, store it, and mint it.

The metadata document a creator writes (``META.json``) describes the model for the catalog and the
relayer; daimm checks it against the model before anything is stored::

    {
      "name": "Iris classifier",
      "description": "Logistic regression on the iris data set",
      "task": "tabular-classification",
      "framework": "onnx",
      "tags": ["iris", "sklearn"],
      "inputs":  [{"name": "input", "dtype": "float32", "shape": [null, 4]}],
      "outputs": [{"name": "label", "dtype": "int64", "shape": [null]},
                  {"name": "probabilities", "dtype": "float32", "shape": [null, 3]}],
      "sample_input": {"input": [[5.1, 3.5, 1.4, 0.2]]},
      "metrics": {"accuracy": 0.97}, "training_data": "...", "licence": "..."
    }

Dimensions are integers or ``null`` (any size). The stored document is this one plus a ``daimm``
section naming the encrypted weights, the version and the creator's key envelope.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daimm.errors import ModelValidationError, ValidationError

if TYPE_CHECKING:
    from ape.api.accounts import AccountAPI
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from daimm.ipfs import Backend
    from daimm.market._tx import Plan
    from daimm.market.marketplace import Marketplace
    from daimm.market.types import Authorisation, PublishedModel, PublishedVersion

__all__ = [
    "DTYPES",
    "Metadata",
    "PreparedPackage",
    "TensorSpec",
    "load_metadata",
    "plan_authorise_relayer",
    "prepare_package",
    "validate_model",
]

#: Metadata dtype -> ONNX Runtime's type string.
DTYPES: dict[str, str] = {
    "float32": "tensor(float)",
    "float64": "tensor(double)",
    "float16": "tensor(float16)",
    "int8": "tensor(int8)",
    "int16": "tensor(int16)",
    "int32": "tensor(int32)",
    "int64": "tensor(int64)",
    "uint8": "tensor(uint8)",
    "bool": "tensor(bool)",
    "string": "tensor(string)",
}

#: A model file larger than this is not loaded whole for validation (bytes).
MAX_VALIDATE_BYTES = 2 << 30


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a model.

    Attributes:
        name: Tensor name, as in the ONNX graph.
        dtype: One of :data:`DTYPES`.
        shape: Dimensions; None for any size.
    """

    name: str
    dtype: str
    shape: tuple[int | None, ...]

    def to_json(self) -> dict[str, Any]:
        """The JSON form used in metadata documents."""
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}


@dataclass(frozen=True)
class Metadata:
    """A creator's metadata document, checked.

    Attributes:
        document: The whole JSON object as written (extra fields are kept).
        name: The model's name.
        inputs: Its input tensors.
        outputs: Its output tensors.
        sample_input: Input name -> nested lists, run once to validate the model.
    """

    document: Mapping[str, Any]
    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    sample_input: Mapping[str, Any]


def _specs(doc: Mapping[str, Any], key: str) -> tuple[TensorSpec, ...]:
    items = doc.get(key)
    if not isinstance(items, list) or not items:
        raise ValidationError(f"metadata needs a non-empty '{key}' list of {{name, dtype, shape}}")
    specs = []
    for i, item in enumerate(items):
        where = f"metadata {key}[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
            raise ValidationError(f"{where} needs a 'name'")
        dtype = item.get("dtype")
        if dtype not in DTYPES:
            raise ValidationError(
                f"{where} ({item['name']}) has dtype {dtype!r}; use one of {', '.join(DTYPES)}"
            )
        shape = item.get("shape")
        if not isinstance(shape, list) or not all(
            d is None or (isinstance(d, int) and not isinstance(d, bool) and d > 0) for d in shape
        ):
            raise ValidationError(
                f"{where} ({item['name']}) needs a 'shape': a list of positive integers or null"
            )
        specs.append(TensorSpec(item["name"], dtype, tuple(shape)))
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValidationError(f"metadata '{key}' names a tensor twice")
    return tuple(specs)


def parse_metadata(document: Any) -> Metadata:
    """Check a metadata document's shape (not yet against a model).

    Raises:
        ValidationError: A missing or mistyped field, named.
    """
    if not isinstance(document, dict):
        raise ValidationError("metadata must be a JSON object")
    name = document.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValidationError("metadata needs a non-empty 'name'")
    for key in ("description", "task", "framework"):
        if key in document and not isinstance(document[key], str):
            raise ValidationError(f"metadata '{key}' must be a string")
    framework = str(document.get("framework", "onnx")).lower()
    if framework != "onnx":
        raise ValidationError(f"framework {framework!r} is not supported: daimm serves ONNX only")
    inputs = _specs(document, "inputs")
    outputs = _specs(document, "outputs")
    sample = document.get("sample_input")
    if not isinstance(sample, dict) or set(sample) != {s.name for s in inputs}:
        raise ValidationError(
            "metadata needs a 'sample_input' object with one value per input:"
            f" {', '.join(s.name for s in inputs)}"
        )
    if "daimm" in document:
        raise ValidationError("metadata must not have a 'daimm' field: daimm writes it")
    return Metadata(document, name.strip(), inputs, outputs, sample)


def load_metadata(path: str | Path) -> Metadata:
    """Read and check a metadata file.

    Raises:
        ValidationError: Unreadable, not JSON, or a bad field.
    """
    try:
        document = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ValidationError(f"cannot read metadata {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise ValidationError(f"metadata {path} is not JSON: {exc}") from exc
    return parse_metadata(document)


def _compatible(declared: Sequence[int | None], actual: Sequence[Any]) -> bool:
    if len(declared) != len(actual):
        return False
    return all(
        d is None or not isinstance(a, int) or a == d for d, a in zip(declared, actual, strict=True)
    )


def validate_model(model_bytes: bytes, metadata: Metadata) -> dict[str, Any]:
    """Check that the model loads in ONNX Runtime, matches the metadata, and runs the sample.

    Args:
        model_bytes: The plaintext ONNX model.
        metadata: Its checked metadata.

    Returns:
        Output name -> the sample's output (as nested lists), for the record.

    Raises:
        ModelValidationError: It does not load, a tensor's name, dtype or shape disagrees with the
            metadata, or the sample input fails or gives outputs of another shape.
    """
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(
            model_bytes, sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # noqa: BLE001 - ORT raises its own untyped errors
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelValidationError(f"the model does not load in ONNX Runtime: {first}") from exc

    for kind, declared, actual in (
        ("input", metadata.inputs, session.get_inputs()),
        ("output", metadata.outputs, session.get_outputs()),
    ):
        by_name = {a.name: a for a in actual}
        if set(by_name) != {d.name for d in declared}:
            raise ModelValidationError(
                f"the model's {kind}s are {sorted(by_name)} but the metadata declares"
                f" {sorted(d.name for d in declared)}"
            )
        for spec in declared:
            node = by_name[spec.name]
            if node.type != DTYPES[spec.dtype]:
                raise ModelValidationError(
                    f"{kind} {spec.name!r} is {node.type} in the model but {spec.dtype} in the"
                    " metadata"
                )
            if not _compatible(spec.shape, node.shape):
                raise ModelValidationError(
                    f"{kind} {spec.name!r} has shape {list(node.shape)} in the model but"
                    f" {list(spec.shape)} in the metadata"
                )

    feeds = {}
    for spec in metadata.inputs:
        dtype = np.dtype("U") if spec.dtype == "string" else np.dtype(spec.dtype)
        try:
            value = np.asarray(metadata.sample_input[spec.name], dtype=dtype)
        except (TypeError, ValueError) as exc:
            raise ModelValidationError(
                f"sample_input {spec.name!r} is not an array of {spec.dtype}: {exc}"
            ) from exc
        if not _compatible(spec.shape, value.shape):
            raise ModelValidationError(
                f"sample_input {spec.name!r} has shape {list(value.shape)}, not {list(spec.shape)}"
            )
        feeds[spec.name] = value
    try:
        results = session.run(None, feeds)
    except Exception as exc:  # noqa: BLE001 - ORT raises its own untyped errors
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelValidationError(f"the sample input does not run: {first}") from exc
    outputs = {}
    for node, result in zip(session.get_outputs(), results, strict=True):
        spec = next(s for s in metadata.outputs if s.name == node.name)
        shape = getattr(result, "shape", None)
        if shape is None or not _compatible(spec.shape, shape):
            raise ModelValidationError(
                f"output {node.name!r} of the sample has shape {list(shape or [])}, not"
                f" {list(spec.shape)}"
            )
        outputs[node.name] = result.tolist()
    return outputs


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
) -> tuple[PreparedPackage, Plan[PublishedModel]]:
    """Validate, encrypt and store a new model, and plan its mint.

    NOTE: the ciphertext is bound to the next model id (``modelCount() + 1``); if another model is
    minted first, the result's ``model_id`` differs and :func:`check_minted_id` refuses it.
    """
    validate_model(read_model_bytes(model_path), metadata)
    model_id = market.models.count() + 1
    package = prepare_package(
        model_path, metadata, backend=backend, creator_key=creator_key, model_id=model_id, version=0
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
