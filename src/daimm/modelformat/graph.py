"""ONNX files as daimm accepts them: untrusted bytes validated before any session is built.

A model is parsed as an ONNX protobuf from bytes and refused if it is a pickle (or joblib file),
stores any tensor as external data (``../``, absolute or any other location: a model is one
self-contained blob), or uses an operator domain outside ONNX's own and ONNX Runtime's built-in
contrib domain (custom-op libraries are never registered). Nothing is ever unpickled. Publishing
and the relayer's worker both call :func:`build_session`, so a creator is refused exactly what a
relayer would refuse.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

from daimm.errors import ModelUnavailableError, ValidationError

__all__ = ["ALLOWED_DOMAINS", "build_session", "decrypt_model", "validate_onnx_bytes"]

#: Operator domains a model may use: ONNX, ONNX-ML and ONNX Runtime's built-in contrib ops.
ALLOWED_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft"})

_PICKLE_PROTOCOLS = {2, 3, 4, 5}


def validate_onnx_bytes(data: bytes) -> Any:
    """Parse ``data`` as an ONNX model and refuse what the relayer never runs.

    Returns:
        The parsed ``onnx.ModelProto``.

    Raises:
        ValidationError: A pickle/joblib file, not ONNX, external data, or a custom-op domain.
    """
    if len(data) >= 2 and data[0] == 0x80 and data[1] in _PICKLE_PROTOCOLS:
        raise ValidationError(
            "this is a Python pickle, not an ONNX model: daimm runs ONNX only and never unpickles"
        )
    if data[:2] in (b"\x78\x9c", b"\x78\x01", b"\x78\xda", b"\x1f\x8b", b"BZ", b"\xfd7"):
        raise ValidationError(
            "this is a compressed file (joblib?), not an ONNX model: daimm runs ONNX only"
        )
    import onnx
    from google.protobuf.message import DecodeError

    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise ValidationError(f"not an ONNX model (protobuf parse failed: {exc})") from None
    if model.ir_version <= 0 or not model.HasField("graph") or not model.graph.output:
        raise ValidationError("not an ONNX model (no IR version or no graph outputs)")
    for opset in model.opset_import:
        if opset.domain not in ALLOWED_DOMAINS:
            raise ValidationError(
                f"the model imports operator domain {opset.domain!r}: custom operators are refused"
            )
    local_functions = {(f.domain, f.name) for f in model.functions}
    for node, where in _all_nodes(model):
        if (
            node.domain not in ALLOWED_DOMAINS
            and (node.domain, node.op_type) not in local_functions
        ):
            raise ValidationError(
                f"node {node.name or node.op_type!r} in {where} uses custom operator domain"
                f" {node.domain!r}: refused (only ONNX and ONNX Runtime built-in operators)"
            )
    for tensor, where in _all_tensors(model):
        if tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data):
            location = next((e.value for e in tensor.external_data if e.key == "location"), "?")
            raise ValidationError(
                f"tensor {tensor.name!r} in {where} keeps its data in an external file"
                f" ({location!r}): refused; embed all weights in the model"
            )
    return model


def _graphs(graph: Any, where: str) -> Iterator[tuple[Any, str]]:
    import onnx

    yield graph, where
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _graphs(attr.g, f"{where}/{node.name or node.op_type}")
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    yield from _graphs(sub, f"{where}/{node.name or node.op_type}")


def _all_nodes(model: Any) -> Iterator[tuple[Any, str]]:
    for graph, where in _graphs(model.graph, "graph"):
        for node in graph.node:
            yield node, where
    for function in model.functions:
        for node in function.node:
            yield node, f"function {function.name}"


def _all_tensors(model: Any) -> Iterator[tuple[Any, str]]:
    import onnx

    for graph, where in _graphs(model.graph, "graph"):
        for tensor in graph.initializer:
            yield tensor, where
        for sparse in graph.sparse_initializer:
            yield sparse.values, where
            yield sparse.indices, where
        for node in graph.node:
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.TENSOR:
                    yield attr.t, where
                elif attr.type == onnx.AttributeProto.TENSORS:
                    for tensor in attr.tensors:
                        yield tensor, where
                elif attr.type == onnx.AttributeProto.SPARSE_TENSOR:
                    yield attr.sparse_tensor.values, where


def build_session(data: bytes, *, threads: int = 1) -> Any:
    """Validate ``data`` and build an ONNX Runtime session from the bytes (CPU, no custom ops).

    Raises:
        ValidationError: See :func:`validate_onnx_bytes`.
        ModelUnavailableError: ONNX Runtime refused the model.
    """
    validate_onnx_bytes(data)
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
        raise ModelUnavailableError(f"ONNX Runtime cannot load the model: {exc}") from None


def decrypt_model(ciphertext: bytes, content_key: bytes, associated_data: bytes) -> bytes:
    """Decrypt a daimm AEAD ciphertext in memory (nothing touches the disk)."""
    from daimm.crypto import decrypt_stream

    out = io.BytesIO()
    decrypt_stream(io.BytesIO(ciphertext), out, content_key, associated_data)
    return out.getvalue()
