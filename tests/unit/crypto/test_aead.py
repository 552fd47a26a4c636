"""The streaming AEAD file format: round trips at every boundary, and every tampering case."""

from __future__ import annotations

import io
import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daimm.crypto import aead
from daimm.crypto.aead import (
    HEADER_SIZE,
    TAG_SIZE,
    Header,
    ciphertext_size,
    decrypt_stream,
    derive_file_key,
    encrypt_stream,
    generate_content_key,
    model_associated_data,
    segment_nonce,
)
from daimm.errors import CryptoError, IntegrityError

SEGMENT = 64
MODEL_A_V1 = model_associated_data(1, 1)


def encrypt(plaintext: bytes, key: bytes, ad: bytes = MODEL_A_V1, segment: int = SEGMENT) -> bytes:
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(plaintext), out, key, ad, segment_size=segment)
    return out.getvalue()


def decrypt(ciphertext: bytes, key: bytes, ad: bytes = MODEL_A_V1) -> bytes:
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(ciphertext), out, key, ad)
    return out.getvalue()


def segments(ciphertext: bytes, segment: int = SEGMENT) -> list[bytes]:
    body = ciphertext[HEADER_SIZE:]
    size = segment + TAG_SIZE
    return [body[i : i + size] for i in range(0, len(body), size)]


class ShortReads(io.BytesIO):
    """A stream that returns at most 7 bytes per read, like a pipe under load."""

    def read(self, size: int | None = -1) -> bytes:
        return super().read(7 if size is None or size < 0 else min(size, 7))


@pytest.fixture
def key() -> bytes:
    return generate_content_key()


@pytest.mark.parametrize(
    "size", [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 2 * SEGMENT, 10 * SEGMENT + 3]
)
def test_round_trip__boundary_sizes__returns_plaintext(key: bytes, size: int) -> None:
    plaintext = os.urandom(size)

    ciphertext = encrypt(plaintext, key)

    assert len(ciphertext) == ciphertext_size(size, SEGMENT)
    assert decrypt(ciphertext, key) == plaintext


def test_round_trip__default_segment_many_segments__returns_plaintext(key: bytes) -> None:
    plaintext = os.urandom(3 * aead.DEFAULT_SEGMENT_SIZE + 5)
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(plaintext), out, key, MODEL_A_V1)

    assert len(segments(out.getvalue(), aead.DEFAULT_SEGMENT_SIZE)) == 4
    assert decrypt(out.getvalue(), key) == plaintext


def test_round_trip__short_reads__returns_plaintext(key: bytes) -> None:
    plaintext = os.urandom(5 * SEGMENT + 9)
    out = io.BytesIO()
    encrypt_stream(ShortReads(plaintext), out, key, MODEL_A_V1, segment_size=SEGMENT)
    back = io.BytesIO()

    decrypt_stream(ShortReads(out.getvalue()), back, key, MODEL_A_V1)

    assert back.getvalue() == plaintext


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=3000), segment=st.integers(min_value=16, max_value=700))
def test_round_trip__random_sizes_and_segments__returns_plaintext(
    data: bytes, segment: int
) -> None:
    key = generate_content_key()

    assert decrypt(encrypt(data, key, segment=segment), key) == data


@settings(max_examples=40, deadline=None)
@given(
    data=st.binary(min_size=1, max_size=600),
    segment=st.integers(min_value=16, max_value=128),
    where=st.integers(min_value=0),
    bit=st.integers(min_value=0, max_value=7),
)
def test_decrypt__any_flipped_bit__raises(data: bytes, segment: int, where: int, bit: int) -> None:
    key = generate_content_key()
    ciphertext = bytearray(encrypt(data, key, segment=segment))
    ciphertext[where % len(ciphertext)] ^= 1 << bit

    with pytest.raises(IntegrityError):
        decrypt(bytes(ciphertext), key)


def test_decrypt__flipped_bit_in_last_segment__releases_no_plaintext_of_it(key: bytes) -> None:
    plaintext = os.urandom(3 * SEGMENT)
    ciphertext = bytearray(encrypt(plaintext, key))
    ciphertext[-1] ^= 1
    out = io.BytesIO()

    with pytest.raises(IntegrityError, match="final segment"):
        decrypt_stream(io.BytesIO(bytes(ciphertext)), out, key, MODEL_A_V1)

    # Only the two segments that verified were released; nothing of the failing one.
    assert out.getvalue() == plaintext[: 2 * SEGMENT]


@pytest.mark.parametrize("cut", [1, TAG_SIZE, SEGMENT + TAG_SIZE, 2 * (SEGMENT + TAG_SIZE)])
def test_decrypt__truncated_file__raises(key: bytes, cut: int) -> None:
    ciphertext = encrypt(os.urandom(4 * SEGMENT), key)

    with pytest.raises(IntegrityError):
        decrypt(ciphertext[:-cut], key)


def test_decrypt__whole_segments_cut_at_the_end__raises(key: bytes) -> None:
    ciphertext = encrypt(os.urandom(4 * SEGMENT + 10), key)
    kept = b"".join(segments(ciphertext)[:3])

    with pytest.raises(IntegrityError, match="final segment"):
        decrypt(ciphertext[:HEADER_SIZE] + kept, key)


def test_decrypt__only_the_header__raises(key: bytes) -> None:
    ciphertext = encrypt(b"weights", key)

    with pytest.raises(IntegrityError, match="no segment"):
        decrypt(ciphertext[:HEADER_SIZE], key)


def test_decrypt__truncated_header__raises(key: bytes) -> None:
    with pytest.raises(IntegrityError, match="truncated"):
        decrypt(encrypt(b"weights", key)[: HEADER_SIZE - 1], key)


def test_decrypt__appended_segment__raises(key: bytes) -> None:
    ciphertext = encrypt(os.urandom(3 * SEGMENT), key)

    with pytest.raises(IntegrityError):
        decrypt(ciphertext + segments(ciphertext)[0], key)


def test_decrypt__reordered_segments__raises(key: bytes) -> None:
    ciphertext = encrypt(os.urandom(4 * SEGMENT), key)
    parts = segments(ciphertext)
    parts[0], parts[1] = parts[1], parts[0]

    with pytest.raises(IntegrityError, match="index 0"):
        decrypt(ciphertext[:HEADER_SIZE] + b"".join(parts), key)


def test_decrypt__duplicated_segment__raises(key: bytes) -> None:
    ciphertext = encrypt(os.urandom(4 * SEGMENT), key)
    parts = segments(ciphertext)
    parts[2] = parts[1]

    with pytest.raises(IntegrityError, match="index 2"):
        decrypt(ciphertext[:HEADER_SIZE] + b"".join(parts), key)


def test_decrypt__wrong_key__raises_before_any_plaintext(key: bytes) -> None:
    ciphertext = encrypt(os.urandom(3 * SEGMENT), key)
    out = io.BytesIO()

    with pytest.raises(IntegrityError, match="key commitment"):
        decrypt_stream(io.BytesIO(ciphertext), out, generate_content_key(), MODEL_A_V1)

    assert out.getvalue() == b""


def test_decrypt__model_a_served_as_model_b__raises(key: bytes) -> None:
    ciphertext = encrypt(b"model A weights", key, model_associated_data(1, 1))

    with pytest.raises(IntegrityError, match="another model"):
        decrypt(ciphertext, key, model_associated_data(2, 1))


def test_decrypt__other_version_of_same_model__raises(key: bytes) -> None:
    ciphertext = encrypt(b"model A v1 weights", key, model_associated_data(1, 1))

    with pytest.raises(IntegrityError, match="another model or version"):
        decrypt(ciphertext, key, model_associated_data(1, 2))


def test_decrypt__header_from_another_file__raises(key: bytes) -> None:
    first = encrypt(os.urandom(2 * SEGMENT), key)
    second = encrypt(os.urandom(2 * SEGMENT), key)

    with pytest.raises(IntegrityError):
        decrypt(second[:HEADER_SIZE] + first[HEADER_SIZE:], key)


def test_decrypt__segment_size_changed_in_header__raises(key: bytes) -> None:
    ciphertext = bytearray(encrypt(os.urandom(2 * SEGMENT), key))
    ciphertext[8:12] = struct.pack(">I", SEGMENT * 2)

    with pytest.raises(IntegrityError, match="key commitment"):
        decrypt(bytes(ciphertext), key)


def test_decrypt__segments_spliced_from_another_file_with_same_key__raises(key: bytes) -> None:
    first = encrypt(os.urandom(2 * SEGMENT), key)
    second = encrypt(os.urandom(2 * SEGMENT), key)
    spliced = first[:HEADER_SIZE] + segments(first)[0] + segments(second)[1]

    with pytest.raises(IntegrityError, match="final segment"):
        decrypt(spliced, key)


@pytest.mark.parametrize(
    ("offset", "value", "message"),
    [(0, b"X", "magic"), (7, b"\x02", "version 2"), (8, b"\x00\x00\x00\x01", "segment size")],
)
def test_header__malformed__raises(key: bytes, offset: int, value: bytes, message: str) -> None:
    ciphertext = bytearray(encrypt(b"weights", key))
    ciphertext[offset : offset + len(value)] = value

    with pytest.raises(IntegrityError, match=message):
        decrypt(bytes(ciphertext), key)


def test_encrypt__key_nonce_pairs__never_repeat_over_10000_encryptions(key: bytes) -> None:
    seen: set[tuple[bytes, bytes]] = set()
    for _ in range(10_000):
        ciphertext = encrypt(b"x" * 20, key, segment=16)  # two segments each
        header = Header.parse(ciphertext[:HEADER_SIZE])
        file_key = derive_file_key(key, header.prefix_bytes, MODEL_A_V1)[:32]
        for index, last in ((0, False), (1, True)):
            seen.add((file_key, segment_nonce(header.nonce_prefix, index, last)))

    assert len(seen) == 20_000


def test_segment_nonce__index_beyond_32_bits__raises() -> None:
    with pytest.raises(CryptoError, match="overflows"):
        segment_nonce(bytes(7), 2**32, last=False)


def test_segment_nonce__binds_index_and_last_flag() -> None:
    prefix = bytes(range(7))

    assert segment_nonce(prefix, 5, last=True) == prefix + b"\x00\x00\x00\x05\x01"
    assert segment_nonce(prefix, 5, last=False) == prefix + b"\x00\x00\x00\x05\x00"


def test_encrypt__segment_counter_would_overflow__aborts_before_writing_it(
    key: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aead, "MAX_SEGMENTS", 3)
    out = io.BytesIO()

    with pytest.raises(CryptoError, match="overflows"):
        encrypt_stream(io.BytesIO(bytes(4 * SEGMENT)), out, key, MODEL_A_V1, segment_size=SEGMENT)

    assert len(out.getvalue()) == HEADER_SIZE + 3 * (SEGMENT + TAG_SIZE)


def test_encrypt__segment_size_out_of_range__raises(key: bytes) -> None:
    with pytest.raises(CryptoError, match="segment size"):
        encrypt(b"x", key, segment=8)


def test_encrypt__short_content_key__raises() -> None:
    with pytest.raises(CryptoError, match="32 bytes"):
        encrypt(b"x", b"short")


def test_model_associated_data__differs_per_model_and_version() -> None:
    values = {model_associated_data(m, v) for m in (0, 1, 2**255) for v in (0, 1)}

    assert len(values) == 6
