"""CAR v1: our writer read by `@ipld/car`, its writer read by us, and hostile CARs refused."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from ipfs_helpers import deterministic_bytes

from daimm.errors import IntegrityError, ValidationError
from daimm.ipfs import (
    KUBO_CID_V1,
    KUBO_DEFAULT,
    CarReader,
    LocalBlockstore,
    Profile,
    add_file,
    export_car,
    fetch_file,
    import_car,
)
from daimm.ipfs.car import encode_header, write_car
from daimm.ipfs.multiformats import CID, encode_varint

SMALL = Profile("small", 1, True, 4096, 4)


@pytest.fixture
def creator_store(tmp_path: Path) -> LocalBlockstore:
    return LocalBlockstore(tmp_path / "creator")


@pytest.fixture
def relayer_store(tmp_path: Path) -> LocalBlockstore:
    return LocalBlockstore(tmp_path / "relayer")


def test_export_then_import__other_store__fetches_same_bytes(
    creator_store: LocalBlockstore, relayer_store: LocalBlockstore
) -> None:
    data = deterministic_bytes(100_000, "car-round-trip")
    root = add_file(io.BytesIO(data), creator_store, SMALL).cid
    car = io.BytesIO()

    export_car(root, creator_store, car)
    roots = import_car(io.BytesIO(car.getvalue()), relayer_store)
    out = io.BytesIO()
    fetch_file(root, relayer_store, out)

    assert roots == (root,)
    assert out.getvalue() == data


@pytest.mark.parametrize("profile", [KUBO_DEFAULT, KUBO_CID_V1, SMALL], ids=lambda p: p.name)
def test_export_car__read_by_js_ipld_car__same_roots_and_valid_blocks(
    profile: Profile, creator_store: LocalBlockstore, js_reference, tmp_path: Path
) -> None:
    data = deterministic_bytes(600_000, "car-js")
    root = add_file(io.BytesIO(data), creator_store, profile).cid
    car_path = tmp_path / "ours.car"
    with car_path.open("wb") as fh:
        count = export_car(root, creator_store, fh)
    with car_path.open("rb") as fh:
        ours = [str(cid) for cid, _ in CarReader(fh).blocks()]

    seen = js_reference({"readCars": [str(car_path)]})["cars"][0]

    assert seen["roots"] == [str(root)]
    assert [b["cid"] for b in seen["blocks"]] == ours
    assert all(b["valid"] for b in seen["blocks"])
    assert len(ours) == count


@pytest.mark.parametrize("profile", [KUBO_DEFAULT, SMALL], ids=lambda p: p.name)
def test_import_car__written_by_js_ipld_car__fetches_same_bytes(
    profile: Profile, relayer_store: LocalBlockstore, js_reference, tmp_path: Path
) -> None:
    data = deterministic_bytes(700_001, "js-car")
    source = tmp_path / "model.bin"
    source.write_bytes(data)
    car_path = tmp_path / "theirs.car"
    job = {
        "path": str(source),
        "cidVersion": profile.cid_version,
        "rawLeaves": profile.raw_leaves,
        "chunkSize": profile.chunk_size,
        "maxChildrenPerNode": profile.max_links,
        "car": str(car_path),
    }
    js_root = js_reference({"imports": [job]})["cids"][0]

    with car_path.open("rb") as fh:
        roots = import_car(fh, relayer_store)
    out = io.BytesIO()
    fetch_file(roots[0], relayer_store, out)

    assert [str(r) for r in roots] == [js_root]
    assert out.getvalue() == data


def test_import_car__block_bytes_swapped__raises_naming_cid(relayer_store: LocalBlockstore) -> None:
    good, evil = b"real weights", b"evil weights"
    cid = CID.for_block(good, version=1, codec=0x55)
    car = io.BytesIO()
    write_car([cid], [(cid, evil)], car)

    with pytest.raises(IntegrityError, match=str(cid)):
        import_car(io.BytesIO(car.getvalue()), relayer_store)

    assert not relayer_store.has_block(cid)


def test_import_car__truncated__raises(
    creator_store: LocalBlockstore, relayer_store: LocalBlockstore
) -> None:
    root = add_file(io.BytesIO(deterministic_bytes(50_000, "cut")), creator_store, SMALL).cid
    car = io.BytesIO()
    export_car(root, creator_store, car)

    with pytest.raises(ValidationError, match="truncated"):
        import_car(io.BytesIO(car.getvalue()[:-10]), relayer_store)


def test_import_car__root_missing__raises(relayer_store: LocalBlockstore) -> None:
    block = b"lonely"
    cid = CID.for_block(block, version=1, codec=0x55)
    other = CID.for_block(b"absent", version=1, codec=0x55)
    car = io.BytesIO()
    write_car([other], [(cid, block)], car)

    with pytest.raises(ValidationError, match="does not contain it"):
        import_car(io.BytesIO(car.getvalue()), relayer_store)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "not a CAR"),
        (encode_varint(5) + b"\xa1\x61a\x01", "truncated header"),
        (b"\x01\xa0", "version None"),
        (
            (lambda h: encode_varint(len(h)) + h)(encode_header([]).replace(b"\x01", b"\x02")),
            "version 2",
        ),
    ],
)
def test_car_reader__malformed_header__raises(raw: bytes, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CarReader(io.BytesIO(raw))


def test_encode_header__one_root__is_canonical_dag_cbor() -> None:
    cid = CID.parse("QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH")

    header = encode_header([cid])

    # {"roots": [CID], "version": 1} with keys in length-first order, tag 42, 0x00 prefix.
    assert header == (
        b"\xa2\x65roots\x81\xd8\x2a\x58\x23\x00" + cid.to_bytes() + b"\x67version\x01"
    )
