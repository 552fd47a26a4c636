"""Tensor specs, the dtype maps and the check of a raw tensor against a spec.

One :class:`TensorSpec` serves the card (``{"name", "dtype", "shape"}``), the relayer's
``GET /v1/models`` (plus the ONNX ``type``) and the worker protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from daimm.errors import RequestRefusedError

__all__ = [
    "DTYPES",
    "ModelSchema",
    "ONNX_TO_DTYPE",
    "TensorSpec",
    "compatible_shape",
    "refuse_non_finite",
    "schema_of",
    "tensor_from_json",
]

#: Card dtype -> ONNX Runtime's type string.
DTYPES: dict[str, str] = {
    "float32": "tensor(float)",
    "float64": "tensor(double)",
    "float16": "tensor(float16)",
    "int8": "tensor(int8)",
    "int16": "tensor(int16)",
    "int32": "tensor(int32)",
    "int64": "tensor(int64)",
    "uint8": "tensor(uint8)",
    "uint16": "tensor(uint16)",
    "uint32": "tensor(uint32)",
    "uint64": "tensor(uint64)",
    "bool": "tensor(bool)",
    "string": "tensor(string)",
}

#: ONNX Runtime's type string -> card dtype (the inverse of :data:`DTYPES`).
ONNX_TO_DTYPE: dict[str, str] = {onnx_type: dtype for dtype, onnx_type in DTYPES.items()}


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a model.

    Attributes:
        name: The tensor's name in the graph.
        type: ONNX type string, e.g. ``tensor(float)`` or ``seq(map(int64,tensor(float)))``.
        shape: Dimensions; ``None`` for a free (symbolic) one; empty for non-tensors.
    """

    name: str
    type: str
    shape: tuple[int | None, ...]

    @classmethod
    def of(cls, name: str, dtype: str, shape: Any) -> TensorSpec:
        """A spec from a card's dtype (``float32``, ``string``, ...)."""
        return cls(name, DTYPES[dtype], tuple(shape))

    @property
    def dtype(self) -> str | None:
        """The card dtype of a plain tensor of this type (``string`` included), else None."""
        return ONNX_TO_DTYPE.get(self.type)

    @property
    def numpy_dtype(self) -> str | None:
        """The numpy dtype served over JSON, or None (strings and non-tensors)."""
        dtype = self.dtype
        return None if dtype in (None, "string") else dtype

    def to_json(self) -> dict[str, Any]:
        """As served by ``GET /v1/models`` and passed from the worker."""
        return {
            "name": self.name,
            "type": self.type,
            "dtype": self.dtype,
            "shape": list(self.shape),
        }

    def to_card(self) -> dict[str, Any]:
        """As written in a model card."""
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}


@dataclass(frozen=True)
class ModelSchema:
    """A model's inputs and outputs."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def to_json(self) -> dict[str, Any]:
        """As served by ``GET /v1/models`` and passed from the worker."""
        return {
            "inputs": [t.to_json() for t in self.inputs],
            "outputs": [t.to_json() for t in self.outputs],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelSchema:
        """Inverse of :meth:`to_json`."""

        def specs(items: Any) -> tuple[TensorSpec, ...]:
            return tuple(
                TensorSpec(str(i["name"]), str(i["type"]), tuple(i["shape"])) for i in items
            )

        return cls(specs(data["inputs"]), specs(data["outputs"]))


def schema_of(session: Any) -> ModelSchema:
    """The schema of an ONNX Runtime session."""

    def spec(node: Any) -> TensorSpec:
        shape = tuple(d if isinstance(d, int) and d >= 0 else None for d in (node.shape or []))
        return TensorSpec(node.name, node.type, shape)

    return ModelSchema(
        tuple(spec(i) for i in session.get_inputs()), tuple(spec(o) for o in session.get_outputs())
    )


def compatible_shape(declared: Any, actual: Any) -> bool:
    """Whether ``actual`` fits ``declared`` (None, or a non-integer, matches any size)."""
    declared, actual = tuple(declared), tuple(actual)
    if len(declared) != len(actual):
        return False
    return all(
        d is None or not isinstance(a, int) or a == d for d, a in zip(declared, actual, strict=True)
    )


def _refuse(name: str, detail: str) -> RequestRefusedError:
    return RequestRefusedError(422, "invalid_input", f"inputs.{name}: {detail}")


def tensor_from_json(spec: TensorSpec, value: Any) -> Any:
    """Check one input's JSON value (nested lists) against its spec and build its numpy array.

    Returns:
        A C-contiguous numpy array of the spec's dtype (``<U`` for strings).

    Raises:
        RequestRefusedError: 422 ``invalid_input`` naming ``inputs.<name>``: ragged, of the wrong
            type, shape or range, or holding NaN or Infinity.
    """
    import numpy as np

    name = spec.name
    if spec.dtype is None:
        raise _refuse(name, f"type {spec.type} is not served over JSON")
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):
        raise _refuse(name, "not a rectangular array") from None
    if spec.dtype == "string":
        if array.dtype.kind != "U":
            raise _refuse(name, "expected strings")
        target = array.dtype
    else:
        if array.dtype == object or array.dtype.kind in "USV":
            raise _refuse(
                name, f"expected numbers of type {spec.dtype}, got a ragged or non-numeric array"
            )
        target = np.dtype(spec.dtype)
        if array.dtype.kind == "f" and target.kind in "iub":
            raise _refuse(name, f"expected {spec.dtype}, got floats")
        if array.dtype.kind == "b" and target.kind != "b":
            raise _refuse(name, f"expected {spec.dtype}, got booleans")
    if len(spec.shape) != array.ndim or any(
        want is not None and want != got for want, got in zip(spec.shape, array.shape, strict=True)
    ):
        shown = ["*" if d is None else d for d in spec.shape]
        raise _refuse(name, f"expected shape {shown}, got {list(array.shape)}")
    try:
        # NOTE: an overflow to an infinity is refused just below, by refuse_non_finite.
        with np.errstate(over="ignore", invalid="ignore"):
            converted = array.astype(
                target, casting="same_kind" if target.kind == "f" else "unsafe"
            )
    except TypeError:
        raise _refuse(name, f"cannot convert to {spec.dtype}") from None
    if target.kind in "iu" and not np.array_equal(converted, array):
        raise _refuse(name, f"values out of range for {spec.dtype}")
    refuse_non_finite(name, converted)
    return np.ascontiguousarray(converted)


def refuse_non_finite(name: str, array: Any) -> None:
    """Refuse a tensor holding NaN or an infinity, after conversion to the model's dtype.

    Python's ``json`` reads ``NaN``, ``Infinity`` and ``-Infinity`` (none of them JSON), and a
    finite number past a float type's range (``1e39`` as float32) becomes an infinity on
    conversion. Neither is a number a model may be asked about, and its answer would not be JSON.

    Raises:
        RequestRefusedError: 422 ``invalid_input`` naming ``inputs.<name>``.
    """
    import numpy as np

    if array.dtype.kind in "fc" and not np.isfinite(array).all():
        raise RequestRefusedError(
            422,
            "invalid_input",
            f"inputs.{name}: holds NaN or an infinity (or a number beyond {array.dtype}'s range);"
            " send finite numbers",
        )
