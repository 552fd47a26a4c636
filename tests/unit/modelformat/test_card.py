"""The model card: one JSON Schema, old cards still valid, a broken card refused with the field
named, and every sample and test model's card checked against its model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from daimm.errors import ModelValidationError
from daimm.modelformat import CardError, ImagePreprocessing, card_schema, parse_card
from daimm.modelformat.model import check_model

SAMPLES = Path(__file__).resolve().parents[3] / "src" / "daimm" / "samples"


def test_schema__ships_in_the_package__and_names_the_pipeline_tags() -> None:
    schema = card_schema()

    assert schema["$defs"]["pipeline_tag"]["enum"] == [
        "tabular-classification", "tabular-regression", "image-classification",
        "text-classification",
    ]  # fmt: skip


def test_parse__old_card__loads_with_its_task_as_pipeline_tag_and_metrics_as_a_list(
    old_card: dict[str, Any],
) -> None:
    card = parse_card(old_card, stored=True)

    assert (card.pipeline_tag, card.labels, card.features) == ("tabular-classification", (), ())
    assert card.metrics == ({"type": "accuracy", "value": 0.97},)
    assert not card.is_classifier


@pytest.mark.parametrize("kind", ["image", "image-nhwc", "text", "tabular", "tokenized"])
def test_check_model__each_test_model__validates_against_its_card(
    make_task: Any, kind: str
) -> None:
    model, document = make_task(kind)

    outputs = check_model(model, parse_card(document))

    assert set(outputs) == {o["name"] for o in document["outputs"]}


@pytest.mark.parametrize("card_path", sorted(SAMPLES.glob("*.card.json")), ids=lambda p: p.name)
def test_check_model__each_sample__validates_against_its_card(card_path: Path) -> None:
    model = card_path.with_name(card_path.name.replace(".card.json", ".onnx"))

    card = parse_card(json.loads(card_path.read_text()))

    check_model(model.read_bytes(), card)
    assert card.pipeline_tag is not None


BROKEN = [
    ("no name", lambda d: d.pop("name"), "name"),
    ("unknown tag", lambda d: d.update(pipeline_tag="image-to-text"), "pipeline_tag"),
    ("bad layout", lambda d: d["inputs"][0]["preprocessing"].update(layout="NCWH"),
     "inputs[0].preprocessing.layout"),
    ("size unlike the tensor", lambda d: d["inputs"][0]["preprocessing"].update(size=[28, 28]),
     "inputs[0].preprocessing"),
    ("three means for one channel", lambda d: d["inputs"][0]["preprocessing"].update(
        mean=[0.1, 0.2, 0.3]), "inputs[0].preprocessing.mean"),
    ("zero std", lambda d: d["inputs"][0]["preprocessing"].update(std=[0]),
     "inputs[0].preprocessing.std[0]"),
    ("label not a string", lambda d: d.update(labels=["zero", 1, "two"]), "labels[1]"),
    ("metric without value", lambda d: d.update(metrics=[{"type": "accuracy"}]),
     "metrics[0].value"),
    ("sample misses an input", lambda d: d.update(sample_input={}), "sample_input"),
    ("scores output unknown", lambda d: d.update(postprocessing={"scores_output": "nope"}),
     "postprocessing.scores_output"),
    ("daimm section", lambda d: d.update(daimm={}), "daimm"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "field"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_parse__broken_card__is_refused_naming_the_field(
    make_task: Any, change: Any, field: str
) -> None:
    _model, document = make_task("image")
    change(document)

    with pytest.raises(CardError) as refused:
        parse_card(document)

    assert refused.value.field == field
    assert f"card field '{field}'" in str(refused.value)


@pytest.mark.parametrize(
    ("kind", "change", "field"),
    [
        ("tabular", lambda d: d.update(features=["a", "b", "c"]), "features"),
        ("tabular", lambda d: d.update(features=["a", "a", "b", "c"]), "features"),
        ("text", lambda d: d["inputs"][0]["preprocessing"].update(mode="tokenizer"),
         "inputs[0].preprocessing.tokenizer"),
    ],
)  # fmt: skip
def test_parse__inconsistent_card__is_refused_naming_the_field(
    make_task: Any, kind: str, change: Any, field: str
) -> None:
    _model, document = make_task(kind)
    change(document)

    with pytest.raises(CardError) as refused:
        parse_card(document)

    assert refused.value.field == field


def test_parse__image_card__reads_its_preprocessing(make_task: Any) -> None:
    _model, document = make_task("image-nhwc")

    card = parse_card(document)

    assert card.image_input == "pixels"
    prep = card.preprocessing["pixels"]
    assert isinstance(prep, ImagePreprocessing)
    assert prep.tensor_shape() == (1, 6, 6, 3)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(labels=["a", "b"]), "2 labels but no float output"),
        (lambda d: d["widget"].append({"structured_data": {"alcohol": 1}}),
         "widget\\[1\\]: inputs.input.malic_acid: missing"),
        (lambda d: d["outputs"][1].update(shape=[None, 4]), "probabilities"),
    ],
)  # fmt: skip
def test_check_model__card_disagrees_with_the_model__is_refused(
    make_task: Any, change: Any, message: str
) -> None:
    model, document = make_task("tabular")
    change(document)

    with pytest.raises(ModelValidationError, match=message):
        check_model(model, parse_card(document))
