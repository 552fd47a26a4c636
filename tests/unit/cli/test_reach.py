"""A running `daimm up` stack is found from its deployments file, and a command that would write
blocks out of its relayer's reach is refused before it stores or sends anything."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from daimm.cli._reach import check_store_reaches_relayer
from daimm.errors import ConfigError
from daimm.stack import running_stack


def _stack_json(state, relayer_pid):
    state.mkdir(parents=True, exist_ok=True)
    (state / "deployments.json").write_text("{}")
    info = {
        "rpc_url": "http://127.0.0.1:8545",
        "chain_id": 1337,
        "network": "ethereum:local:http://127.0.0.1:8545",
        "network_key": "ethereum:local:node",
        "deployments_file": str(state / "deployments.json"),
        "contracts": {},
        "aimt": "0x" + "11" * 20,
        "relayer_url": "http://127.0.0.1:8700",
        "relayer_address": "0x" + "22" * 20,
        "web_url": "",
        "catalog_url": f"sqlite:///{state / 'catalog.sqlite'}",
        "model_id": 1,
        "accounts": [],
        "state_dir": str(state),
        "store": str(state / "blocks"),
        "env": {"DAIMM_STORE": str(state / "blocks")},
        "pids": {"relayer": relayer_pid},
    }
    (state / "stack.json").write_text(json.dumps(info))
    return state / "deployments.json"


def test_running_stack__beside_the_deployments_file__is_found_while_its_relayer_lives(tmp_path):
    deployments = _stack_json(tmp_path / "up", os.getpid())

    found = running_stack(deployments)

    assert found is not None and found.store == str(tmp_path / "up" / "blocks")


def test_running_stack__relayer_gone__is_none(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    deployments = _stack_json(tmp_path / "up", gone.pid)

    assert running_stack(deployments) is None


def test_check_store__another_folder_than_the_stacks__is_refused_naming_the_fix(tmp_path):
    deployments = _stack_json(tmp_path / "up", os.getpid())
    blocks = tmp_path / "up" / "blocks"

    with pytest.raises(ConfigError) as refused:
        check_store_reaches_relayer(str(tmp_path / "home-blocks"), None, str(deployments))

    assert f"export DAIMM_STORE={blocks}" in str(refused.value)
    check_store_reaches_relayer(str(blocks), None, str(deployments))  # the stack's own: fine
    check_store_reaches_relayer("~/x", "http://127.0.0.1:5001", str(deployments))  # Kubo: shared


def test_check_store__no_stack__lets_any_store_through(tmp_path):
    (tmp_path / "deployments.json").write_text("{}")

    check_store_reaches_relayer(str(tmp_path / "b"), None, str(tmp_path / "deployments.json"))
