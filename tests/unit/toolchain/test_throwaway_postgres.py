"""The tests' throwaway PostgreSQL server runs wherever the checkout sits.

Under root the server runs as ``nobody``; a checkout in a folder others cannot enter (``/root``,
a 0700 temporary folder) once made every PostgreSQL test fail with ``PermissionError`` on
``initdb``. Here the binaries are installed into such a folder, as a checkout's ``.venv`` is.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from tests.utils.postgres import PostgresServer, PostgresUnavailable, postgres_bin


def test_a_server_whose_binaries_sit_in_a_private_folder__starts_and_answers(
    tmp_path: Path,
) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root runs the server as another user (nobody), who must reach it")
    try:
        site = postgres_bin().parents[2]  # .../site-packages (pgserver/pginstall/bin)
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    private = tmp_path / "checkout"
    private.mkdir(mode=0o700)
    private.chmod(0o700)  # whatever the umask
    venv = private / ".venv" / "site-packages"
    for name in ("pgserver", "pgserver.libs"):  # the wheel's layout: the binaries need both
        shutil.copytree(site / name, venv / name, symlinks=True)

    private_bin = venv / "pgserver" / "pginstall" / "bin"
    server = PostgresServer(private_bin)
    try:
        server.start()
        answer = server.execute("SELECT 6 * 7")
    finally:
        server.close()
        if server.bin_dir != private_bin:  # the copy is keyed by this one-off folder: drop it
            shutil.rmtree(server.bin_dir.parents[2], ignore_errors=True)

    assert answer == [(42,)]
    assert server.bin_dir != private_bin  # it ran a copy that nobody can reach
