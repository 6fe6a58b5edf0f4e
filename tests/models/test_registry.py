"""The model registry: names, patterns, cards and errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from actionrec import ActionrecError, create_model, example_input, get_card, list_models
from actionrec.models.registry import ModelCard, register_model

OURS = {
    "r3d_18",
    "mc3_18",
    "r2plus1d_18",
    "r2plus1d_34",
    "r2plus1d_small",
    "single_frame_r18",
    "single_frame_r50",
    "single_frame_small",
}


def test_unknown_model_is_an_actionrec_error() -> None:
    with pytest.raises(ActionrecError, match="unknown model 'r2plus1d_99'"):
        create_model("r2plus1d_99")
    with pytest.raises(ActionrecError, match="unknown model"):
        get_card("no_such_model")


def test_list_models_patterns() -> None:
    everything = list_models()
    assert everything == sorted(everything) and set(everything) >= OURS
    assert list_models("r2plus1d*") == ["r2plus1d_18", "r2plus1d_34", "r2plus1d_small"]
    assert set(list_models("*_small")) >= {"r2plus1d_small", "single_frame_small"}
    assert list_models("single_frame_r?0") == ["single_frame_r50"]
    assert list_models("zzz*") == []


def test_create_model_attaches_card_name_and_overrides() -> None:
    model = create_model("r2plus1d_small", num_classes=6, dropout=0.25).eval()
    assert model.model_name == "r2plus1d_small"
    assert model.card is get_card("r2plus1d_small")
    assert model.card.arxiv == "1711.11248"
    assert model.dropout.p == 0.25
    assert model(example_input("r2plus1d_small", num_frames=4, size=32)).shape == (1, 6)


@pytest.mark.parametrize("name", sorted(OURS))
def test_our_cards_are_complete(name: str) -> None:
    card = get_card(name)
    assert card.paper and card.section and card.normalization in ("kinetics", "imagenet")
    assert (card.published_params_m is None) == (card.published_gmacs is None) == (not card.published_input)


def test_registering_a_name_twice_is_refused() -> None:
    before = list_models()

    def r3d_18(*, num_classes: int = 400) -> nn.Module:
        return nn.Linear(1, num_classes)

    with pytest.raises(ValueError, match="registered twice"):
        register_model(ModelCard(paper="dup", arxiv=""))(r3d_18)
    assert list_models() == before
    assert isinstance(create_model("r3d_18", num_classes=2).stem, nn.Module)  # the original is kept


def test_example_input_follows_the_card() -> None:
    x = example_input("single_frame_r18", batch=2)
    assert isinstance(x, torch.Tensor) and x.shape == (2, 3, 8, 224, 224)
    assert example_input("r2plus1d_34").shape == (1, 3, 32, 112, 112)
