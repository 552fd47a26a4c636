"""The HTTP edge's pure parts: the JSON depth scan, body parsing, output encoding, URL redaction.

The same behaviour through the real app on uvicorn is in tests/trust/test_relayer_edge.py.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.utils.relayer import free_port

from daimm.errors import ChainUnavailableError, RequestRefusedError
from daimm.relayer.chain import ChainReader, redact_url
from daimm.relayer.edge import json_depth, parse_json_body
from daimm.relayer.models import refuse_non_finite
from daimm.relayer.worker import NonFiniteOutputError, encode_outputs


def _depth(value: Any) -> int:
    """The reference: nesting depth of a parsed JSON value."""
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


# Strings full of what could fool a scanner: brackets, quotes, backslashes, non-ASCII.
_tricky = st.text(alphabet=st.sampled_from('[]{}"\\ ax\u00e9\u4e2d\n'), max_size=12)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _tricky,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_tricky, inner, max_size=4),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(value=_json, ascii_only=st.booleans())
def test_json_depth__any_json_document__equals_the_parsed_nesting(
    value: Any, ascii_only: bool
) -> None:
    body = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert json_depth(body) == _depth(value)


@pytest.mark.parametrize(
    ("body", "depth"),
    [
        (b"", 0),
        (b"1", 0),
        (b"[]", 1),
        (b"[" * 5000, 5000),
        (b'["[[[", {"a": "}}}"}]', 2),
        (b'["\\"[[", []]', 2),  # an escaped quote does not end the string
        (b'["\\\\", [[]]]', 3),  # an escaped backslash does not escape the quote after it
    ],
)
def test_json_depth__edge_cases(body: bytes, depth: int) -> None:
    assert json_depth(body) == depth


def test_parse_json_body__one_past_the_limit__422_json_too_deep() -> None:
    assert parse_json_body(b"[" * 8 + b"]" * 8, max_depth=8) == [[[[[[[[]]]]]]]]
    with pytest.raises(RequestRefusedError) as refused:
        parse_json_body(b"[" * 9 + b"]" * 9, max_depth=8)
    assert (refused.value.status, refused.value.code) == (422, "json_too_deep")


def test_parse_json_body__the_parsers_recursion_error__422_invalid_json(monkeypatch: Any) -> None:
    # NOTE: a stand-in parser that raises RecursionError, as json.loads does past the
    # interpreter's recursion limit: a body the depth scan lets through must still be a 422.
    def exhausted(_text: str) -> Any:
        raise RecursionError("maximum recursion depth exceeded while decoding a JSON array")

    monkeypatch.setattr(json, "loads", exhausted)
    with pytest.raises(RequestRefusedError) as refused:
        parse_json_body(b"[[1]]", max_depth=64)
    assert (refused.value.status, refused.value.code) == (422, "invalid_json")


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_encode_outputs__nan_or_infinity__refused_naming_the_output(value: float) -> None:
    with pytest.raises(NonFiniteOutputError, match="^y$"):
        encode_outputs({"label": [1], "y": [[0.5, value]]})
    assert encode_outputs({"y": [[0.5, 1.0]]}) == b'{"y":[[0.5,1.0]]}'


def test_refuse_non_finite__float_tensors_only() -> None:
    refuse_non_finite("x", np.array([[1.0, 2.0]], dtype=np.float32))
    refuse_non_finite("ids", np.array([1, 2], dtype=np.int64))
    with pytest.raises(RequestRefusedError, match=r"^invalid_input \(422\): inputs\.x: holds NaN"):
        refuse_non_finite("x", np.array([[1.0, np.nan]], dtype=np.float32))


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
        ("https://mainnet.infura.io/v3/0123abcd", "https://mainnet.infura.io/..."),
        ("https://rpc.example/?apikey=0123abcd", "https://rpc.example/..."),
        ("https://user:0123abcd@rpc.example", "https://rpc.example/..."),
        ("http://[::1]:8545/", "http://[::1]:8545"),
    ],
)
def test_redact_url__keeps_scheme_host_and_port_only(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_chain_reader__unreachable_hosted_url__error_names_the_host_not_the_key() -> None:
    port = free_port()
    reader = ChainReader(f"http://u:KEY-1@127.0.0.1:{port}/v3/KEY-2?k=KEY-3", {}, timeout_s=2.0)
    with pytest.raises(ChainUnavailableError) as down:
        reader.chain_id()
    message = str(down.value)
    assert f"http://127.0.0.1:{port}/..." in message
    assert "KEY-" not in message
