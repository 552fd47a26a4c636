"""Encryption properties that tests/unit/crypto does not already state.

Already covered there (not repeated): Hypothesis round trips at random sizes and segment sizes;
a flipped bit anywhere; truncation at fixed points, whole segments cut, appended, reordered,
duplicated or spliced segments; wrong key before any plaintext; model A as model B and another
version (one pair each); no (key, nonce) repeat over 10,000 encryptions; the segment counter
overflow; all-zero X25519 secrets on both sides; malformed envelopes.

Added here, as properties over random inputs: *any* truncation, extension, insertion or deletion
of bytes fails; the associated data is injective, so *no* other (model, version) pair opens a
ciphertext, including pairs whose big-endian bytes look alike; and the relayer's own in-memory
decryption path (``daimm.relayer.models.decrypt_model``) refuses a ciphertext served for another
model or version, as a storage node swapping CIDs would. ``DAIMM_FUZZ=long`` runs 10x more cases.
"""

from __future__ import annotations

import io

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from daimm.crypto.aead import (
    HEADER_SIZE,
    decrypt_stream,
    encrypt_stream,
    generate_content_key,
    model_associated_data,
)
from daimm.errors import CryptoError, IntegrityError
from daimm.relayer.models import decrypt_model
from tests.trust.conftest import LONG

EXAMPLES = 400 if LONG else 40
KEY = generate_content_key()
UINT256 = st.integers(min_value=0, max_value=2**256 - 1)
UINT64 = st.integers(min_value=0, max_value=2**64 - 1)


def _encrypt(plaintext: bytes, ad: bytes, segment: int) -> bytes:
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(plaintext), out, KEY, ad, segment_size=segment)
    return out.getvalue()


def _decrypt(ciphertext: bytes, ad: bytes) -> bytes:
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(ciphertext), out, KEY, ad)
    return out.getvalue()


AD = model_associated_data(7, 0)


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    plaintext=st.binary(min_size=0, max_size=2000),
    segment=st.integers(min_value=16, max_value=300),
    data=st.data(),
)
def test_any_cut_extension_insertion_or_deletion_of_ciphertext_bytes_fails(
    plaintext: bytes, segment: int, data: st.DataObject
) -> None:
    ciphertext = _encrypt(plaintext, AD, segment)
    kind = data.draw(st.sampled_from(["cut", "extend", "insert", "delete"]))
    if kind == "cut":
        at = data.draw(st.integers(min_value=0, max_value=len(ciphertext) - 1))
        tampered = ciphertext[:at]
    elif kind == "extend":
        tampered = ciphertext + data.draw(st.binary(min_size=1, max_size=segment + 40))
    elif kind == "insert":
        at = data.draw(st.integers(min_value=0, max_value=len(ciphertext)))
        tampered = ciphertext[:at] + data.draw(st.binary(min_size=1, max_size=8)) + ciphertext[at:]
    else:
        at = data.draw(st.integers(min_value=0, max_value=len(ciphertext) - 1))
        size = data.draw(st.integers(min_value=1, max_value=8))
        tampered = ciphertext[:at] + ciphertext[at + size :]
    assume(tampered != ciphertext)

    with pytest.raises((IntegrityError, CryptoError)):
        _decrypt(tampered, AD)


@settings(max_examples=EXAMPLES, deadline=None)
@given(model=UINT256, version=UINT64, other_model=UINT256, other_version=UINT64)
def test_no_other_model_or_version_opens_a_ciphertext(
    model: int, version: int, other_model: int, other_version: int
) -> None:
    assume((model, version) != (other_model, other_version))
    ciphertext = _encrypt(b"weights of one model", model_associated_data(model, version), 64)

    assert model_associated_data(model, version) != model_associated_data(
        other_model, other_version
    )
    with pytest.raises(IntegrityError, match="key commitment"):
        _decrypt(ciphertext, model_associated_data(other_model, other_version))


@pytest.mark.parametrize(
    ("served_as", "why"),
    [
        ((2, 0), "another model"),
        ((1, 1), "a later version of the same model"),
        ((256, 0), "a model id equal to 1 shifted by one byte"),
        ((0, 1), "model and version swapped"),
    ],
)
def test_the_relayers_decryption_refuses_a_ciphertext_served_for_another_model(
    served_as: tuple[int, int], why: str
) -> None:
    plaintext = b"\x08\x07" + b"onnx bytes of model 1 version 0" * 40
    ciphertext = _encrypt(plaintext, model_associated_data(1, 0), 256)
    assert decrypt_model(ciphertext, KEY, model_associated_data(1, 0)) == plaintext

    with pytest.raises(IntegrityError, match="key commitment"):
        decrypt_model(ciphertext, KEY, model_associated_data(*served_as))


def test_a_header_alone_never_yields_plaintext() -> None:
    ciphertext = _encrypt(b"x" * 100, AD, 32)
    for cut in range(HEADER_SIZE + 1):
        with pytest.raises((IntegrityError, CryptoError)):
            _decrypt(ciphertext[:cut], AD)
