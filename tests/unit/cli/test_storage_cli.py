"""`daimm keys`, `daimm pack` and `daimm ipfs`, called the way a user calls them.

Commands run in-process through `daimm.cli.main` (the console entry point), so an error is checked
exactly as a user sees it: one line on stderr, exit status 1, no traceback.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from daimm.cli import main

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Run:
    monkeypatch.setenv("DAIMM_STORE", str(tmp_path / "store"))
    monkeypatch.delenv("DAIMM_KUBO_URL", raising=False)
    monkeypatch.delenv("DAIMM_KEY_PASSPHRASE", raising=False)

    def invoke(*argv: str | Path) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            main([str(a) for a in argv])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "model.onnx"
    path.write_bytes(os.urandom(700_000))
    return path


@pytest.fixture
def relayer_key(run: Run, tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "relayer.key"
    code, out, _ = run("keys", "new", "-o", path)
    assert code == 0
    return path, out.strip()


def assert_one_line_error(code: int, err: str, fragment: str) -> None:
    assert code != 0
    assert err.startswith("Error: ")
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert fragment in err


def test_keys_new__prints_public_key_and_writes_0600_file(relayer_key: tuple[Path, str]) -> None:
    path, public = relayer_key

    assert public.startswith("x25519:") and len(public) == 7 + 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_keys_new__existing_file__one_line_error(run: Run, relayer_key: tuple[Path, str]) -> None:
    code, _, err = run("keys", "new", "-o", relayer_key[0])

    assert_one_line_error(code, err, "already exists")


def test_keys_show__passphrase_from_env__prints_same_public_key(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAIMM_KEY_PASSPHRASE", "correct horse")
    _, public, _ = run("keys", "new", "-o", tmp_path / "k")

    code, shown, _ = run("keys", "show", tmp_path / "k")
    monkeypatch.setenv("DAIMM_KEY_PASSPHRASE", "wrong")
    bad_code, _, err = run("keys", "show", tmp_path / "k")

    assert (code, shown) == (0, public)
    assert_one_line_error(bad_code, err, "wrong passphrase")


def test_pack_and_ipfs__full_flow__decrypts_identical_bytes(
    run: Run, model: Path, relayer_key: tuple[Path, str], tmp_path: Path
) -> None:
    key, public = relayer_key
    enc = tmp_path / "model.enc"

    assert (
        run("pack", "encrypt", model, "--recipient", public, "-o", enc, "--model-id", "7")[0] == 0
    )
    code, cid, _ = run("ipfs", "add", enc)
    only_hash = run("ipfs", "add", "--only-hash", enc)[1]
    assert run("ipfs", "get", cid.strip(), "-o", tmp_path / "fetched.enc")[0] == 0
    code_dec, _, _ = run(
        "pack", "decrypt", tmp_path / "fetched.enc",
        "--envelope", tmp_path / "model.enc.envelope.json",
        "--key", key, "--model-id", "7", "-o", tmp_path / "back.onnx",
    )  # fmt: skip

    assert code == 0 and cid.strip().startswith("Qm") and cid.count("\n") == 1
    assert only_hash == cid
    assert code_dec == 0
    assert (tmp_path / "back.onnx").read_bytes() == model.read_bytes()
    assert stat.S_IMODE((tmp_path / "back.onnx").stat().st_mode) == 0o600


def _encrypt(run: Run, model: Path, public: str, out: Path) -> None:
    code, _, err = run(
        "pack", "encrypt", model, "--recipient", public, "-o", out, "--model-id", "7"
    )
    assert code == 0, err


def test_pack_decrypt__served_as_another_model__one_line_error_and_no_output(
    run: Run, model: Path, relayer_key: tuple[Path, str], tmp_path: Path
) -> None:
    key, public = relayer_key
    _encrypt(run, model, public, tmp_path / "m.enc")

    code, _, err = run(
        "pack", "decrypt", tmp_path / "m.enc", "--envelope", tmp_path / "m.enc.envelope.json",
        "--key", key, "--model-id", "8", "-o", tmp_path / "out.onnx",
    )  # fmt: skip

    assert_one_line_error(code, err, "another model")
    assert not (tmp_path / "out.onnx").exists()


def test_pack_decrypt__tampered_last_segment__no_partial_output_file(
    run: Run, model: Path, relayer_key: tuple[Path, str], tmp_path: Path
) -> None:
    key, public = relayer_key
    enc = tmp_path / "m.enc"
    _encrypt(run, model, public, enc)
    data = bytearray(enc.read_bytes())
    data[-3] ^= 0x40
    enc.write_bytes(bytes(data))

    code, _, err = run(
        "pack", "decrypt", enc, "--envelope", tmp_path / "m.enc.envelope.json",
        "--key", key, "--model-id", "7", "-o", tmp_path / "out.onnx",
    )  # fmt: skip

    assert_one_line_error(code, err, "failed authentication")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out")) == []
    assert not (tmp_path / "out.onnx").exists()


def test_pack_decrypt__not_a_recipient__one_line_error(
    run: Run, model: Path, relayer_key: tuple[Path, str], tmp_path: Path
) -> None:
    _encrypt(run, model, relayer_key[1], tmp_path / "m.enc")
    run("keys", "new", "-o", tmp_path / "stranger.key")

    code, _, err = run(
        "pack", "decrypt", tmp_path / "m.enc", "--envelope", tmp_path / "m.enc.envelope.json",
        "--key", tmp_path / "stranger.key", "--model-id", "7", "-o", tmp_path / "out.onnx",
    )  # fmt: skip

    assert_one_line_error(code, err, "no entry for public key")


def test_pack_share__new_recipient__decrypts_and_ciphertext_cid_unchanged(
    run: Run, model: Path, relayer_key: tuple[Path, str], tmp_path: Path
) -> None:
    key, public = relayer_key
    enc = tmp_path / "m.enc"
    _encrypt(run, model, public, enc)
    cid_before = run("ipfs", "add", "-n", enc)[1]
    _, licensee, _ = run("keys", "new", "-o", tmp_path / "licensee.key")

    code, _, _ = run(
        "pack", "share", tmp_path / "m.enc.envelope.json", "--key", key,
        "--recipient", licensee.strip(), "-o", tmp_path / "shared.json",
    )  # fmt: skip
    code_dec, _, _ = run(
        "pack", "decrypt", enc, "--envelope", tmp_path / "shared.json",
        "--key", tmp_path / "licensee.key", "--model-id", "7", "-o", tmp_path / "out.onnx",
    )  # fmt: skip

    assert (code, code_dec) == (0, 0)
    assert (tmp_path / "out.onnx").read_bytes() == model.read_bytes()
    assert run("ipfs", "add", "-n", enc)[1] == cid_before


@pytest.mark.parametrize(
    ("args", "prefix"),
    [((), "Qm"), (("--cid-version", "1"), "bafybei"), (("--profile", "unixfs-v1-2025"), "bafk")],
)
def test_ipfs_add__cid_options__print_the_matching_cid(
    run: Run, model: Path, args: tuple[str, ...], prefix: str
) -> None:
    code, out, err = run("ipfs", "add", "--only-hash", *args, model)

    assert code == 0
    assert out.startswith(prefix) and out.count("\n") == 1
    assert err == ""  # no progress bar when stderr is not a terminal


def test_ipfs_car__export_then_import_into_other_store__get_same_bytes(
    run: Run, model: Path, tmp_path: Path
) -> None:
    cid = run("ipfs", "add", model)[1].strip()
    assert run("ipfs", "car", "export", cid, "-o", tmp_path / "m.car")[0] == 0

    code, roots, _ = run("ipfs", "car", "import", tmp_path / "m.car", "--store", tmp_path / "s2")
    got = run("ipfs", "get", cid, "-o", tmp_path / "back", "--store", tmp_path / "s2", "-q")

    assert (code, roots.strip(), got[0]) == (0, cid, 0)
    assert (tmp_path / "back").read_bytes() == model.read_bytes()


def test_ipfs_get__unknown_cid__one_line_error(run: Run, tmp_path: Path) -> None:
    code, _, err = run(
        "ipfs", "get", "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
        "-o", tmp_path / "x",
    )  # fmt: skip

    assert_one_line_error(code, err, "not in the local blockstore")
    assert not (tmp_path / "x").exists()


def test_ipfs_get__not_a_cid__one_line_error(run: Run, tmp_path: Path) -> None:
    code, _, err = run("ipfs", "get", "hello", "-o", tmp_path / "x")

    assert_one_line_error(code, err, "is not a CID")


def test_pack_encrypt__bad_recipient__one_line_error(run: Run, model: Path, tmp_path: Path) -> None:
    code, _, err = run("pack", "encrypt", model, "--recipient", "x25519:00", "-o", tmp_path / "o")

    assert_one_line_error(code, err, "not a daimm public key")


@pytest.mark.parametrize(
    "command",
    [
        ("ipfs", "add"),
        ("ipfs", "get"),
        ("ipfs", "pin"),
        ("ipfs", "car", "export"),
        ("ipfs", "car", "import"),
        ("keys", "new"),
        ("keys", "show"),
        ("pack", "encrypt"),
        ("pack", "decrypt"),
        ("pack", "share"),
    ],
)
def test_help__every_storage_command__shows_an_example(run: Run, command: tuple[str, ...]) -> None:
    code, out, _ = run(*command, "--help")

    assert code == 0
    assert "Example:" in out


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("DAIMM_FUZZ") != "long" and os.environ.get("DAIMM_SLOW") != "1",
    reason="long: run with DAIMM_SLOW=1 or make fuzz",
)
def test_pack_and_ipfs__1_gib_model__round_trips_through_the_cli(
    run: Run, relayer_key: tuple[Path, str], tmp_path: Path
) -> None:
    key, public = relayer_key
    model = tmp_path / "big.onnx"
    with model.open("wb") as fh:
        for _ in range(1024):
            fh.write(os.urandom(1 << 20))
    enc, back, out = tmp_path / "big.enc", tmp_path / "fetched.enc", tmp_path / "back.onnx"

    assert run("pack", "encrypt", model, "--recipient", public, "-o", enc, "-q")[0] == 0
    cid = run("ipfs", "add", "-q", enc)[1].strip()
    assert run("ipfs", "get", cid, "-o", back, "-q")[0] == 0
    code, _, err = run(
        "pack", "decrypt", back, "--envelope", tmp_path / "big.enc.envelope.json",
        "--key", key, "-o", out, "-q",
    )  # fmt: skip

    assert code == 0, err
    assert out.stat().st_size == model.stat().st_size
    with model.open("rb") as a, out.open("rb") as b:
        while chunk := a.read(1 << 24):
            assert b.read(1 << 24) == chunk


def test_keys_derive__test_account__prints_the_key_its_signature_derives(
    run: Run, tmp_path: Path
) -> None:
    from eth_account import Account

    from daimm import eip712
    from daimm.crypto.keys import derive_private_key, load_private_key, public_key_of

    account = Account.from_key("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
    signed = account.sign_message(eip712.signable_creator_key(account.address))
    expected = public_key_of(
        derive_private_key(eip712.encode_signature(signed.v, signed.r, signed.s))
    )
    code, out, err = run("keys", "derive", "--account", "TEST::0", "-o", tmp_path / "c.key")
    assert code == 0, err
    assert out.strip() == str(expected)
    assert public_key_of(load_private_key(tmp_path / "c.key")) == expected
    again_code, again, _ = run("keys", "derive", "--account", "TEST::0")
    assert (again_code, again) == (0, out)


def test_keys_derive__unknown_alias__one_line_error(run: Run) -> None:
    code, _, err = run("keys", "derive", "--account", "no-such-alias-here")
    assert_one_line_error(code, err, "no ape account")
