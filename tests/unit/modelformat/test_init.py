"""``daimm model init``: a card written from an ONNX file that validates and runs, with the human
fields marked; publishing refuses the card until they are filled in."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from daimm.errors import ModelValidationError
from daimm.market import publishing
from daimm.modelformat import PLACEHOLDER, CardError, parse_card
from daimm.modelformat.model import check_model, init_card


@pytest.mark.parametrize(
    ("kind", "tag", "prep"),
    [
        ("image", "image-classification",
         {"size": [8, 8], "channels": 1, "layout": "NCHW"}),
        ("image-nhwc", "image-classification",
         {"size": [6, 6], "channels": 3, "layout": "NHWC"}),
        ("text", "text-classification", {"type": "text", "mode": "string"}),
        ("tabular", "tabular-classification", None),
    ],
)  # fmt: skip
def test_init__each_task__guesses_the_tag_and_writes_a_card_whose_sample_runs(
    make_task: Any, kind: str, tag: str, prep: Any
) -> None:
    model, original = make_task(kind)

    document = init_card(model)

    card = parse_card(document)
    assert card.pipeline_tag == tag
    assert [s.to_card() for s in card.inputs] == [
        {k: v for k, v in i.items() if k != "preprocessing"} for i in original["inputs"]
    ]
    if prep is not None:
        written = document["inputs"][0]["preprocessing"]
        assert {k: written[k] for k in prep} == prep
    assert set(check_model(model, card)) == {o["name"] for o in original["outputs"]}


def test_init__card__marks_human_fields_and_publishing_refuses_it_until_filled(
    make_task: Any,
) -> None:
    model, _ = make_task("tabular")
    document = init_card(model)
    card = parse_card(document)
    assert {"name", "description", "labels[0]", "features[3]"} <= set(card.placeholders())

    with pytest.raises(CardError, match="still holds `daimm model init`'s 'FILL IN' marker"):
        publishing.validate_model(model, card)

    filled = json.loads(json.dumps(document).replace(f"{PLACEHOLDER}: ", "filled "))
    assert publishing.validate_model(model, parse_card(filled))


def test_init__zipmap_output__is_refused_with_what_to_do() -> None:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("ZipMap", ["x"], ["y"], domain="ai.onnx.ml", classlabels_int64s=[0, 1])],
        "zip",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_value_info("y", helper.make_sequence_type_proto(
            helper.make_map_type_proto(TensorProto.INT64,
                                       helper.make_tensor_type_proto(TensorProto.FLOAT, []))))],
    )  # fmt: skip
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)],
    )
    model.ir_version = 8

    with pytest.raises(ModelValidationError, match="zipmap"):
        init_card(model.SerializeToString())


def test_cli__init_then_publish_validate_only__works_offline(make_task: Any, tmp_path: Any) -> None:
    from daimm.cli import cli as main

    model, _ = make_task("image")
    path = tmp_path / "digits.onnx"
    path.write_bytes(model)
    runner = CliRunner()

    written = runner.invoke(main, ["model", "init", str(path), "--name", "Digits"])
    refused = runner.invoke(main, ["model", "publish", str(path), "--meta",
                                   str(tmp_path / "digits.json"), "--validate-only"])  # fmt: skip
    card = json.loads((tmp_path / "digits.json").read_text())
    filled = json.loads(json.dumps(card).replace(f"{PLACEHOLDER}: ", "filled "))
    (tmp_path / "digits.json").write_text(json.dumps(filled))
    accepted = runner.invoke(main, ["model", "publish", str(path), "--meta",
                                    str(tmp_path / "digits.json"), "--validate-only"])  # fmt: skip

    assert written.exit_code == 0, written.output
    assert card["name"] == "Digits"
    assert refused.exit_code == 1
    assert "Error: card field 'description'" in refused.output
    assert accepted.exit_code == 0, accepted.output
    assert "image-classification" in accepted.output
