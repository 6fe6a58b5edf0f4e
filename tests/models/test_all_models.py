"""Every registered model, found through ``list_models()``: interface, forward, backward, published numbers.

A new model is covered by being registered. It runs on a reduced clip (1 x C x 8 x 32 x 32, or the next
larger one it accepts, found by a free probe on the meta device: see ``_reduced_input``); a model that
needs something else goes into ``INPUT_OVERRIDES``, and one whose forward + backward takes more than a
few seconds on 2 CPU cores gets a pattern in ``HEAVY``.
"""

from __future__ import annotations

import fnmatch

import pytest
import torch

from actionrec.cli.models import build_for_counting, input_for_spec, measurement_spec, num_classes_for
from actionrec.models import create_model, example_input, get_card, list_models
from actionrec.models.complexity import count_macs, count_params

ALL_MODELS = list_models()
NUM_CLASSES = 5
REDUCED_FRAMES, REDUCED_SIZES = 8, (32, 64)
# name -> (frames, size) for models that cannot run on the reduced clip.
INPUT_OVERRIDES: dict[str, tuple[int, int]] = {}
# Models whose forward + backward on the reduced clip is too slow for the quick (not slow) run.
HEAVY = (
    "timesformer_base*",
    "timesformer_hr",
    "timesformer_l",
    "*r50*",
    "*inception*",
    "i3d*",
    "slowfast*",
    "c3d*",
    "r2plus1d_34",
    "*cnn_m2048*",
    "*vgg16*",
)


def _marked(names: list[str]) -> list[object]:
    heavy = [n for n in names if any(fnmatch.fnmatch(n, p) for p in HEAVY)]
    return [pytest.param(n, marks=pytest.mark.slow) if n in heavy else n for n in names]


def _runs_on_meta(name: str, x: object) -> bool:
    try:
        with torch.device("meta"):
            model = create_model(name, num_classes=NUM_CLASSES).eval()
    except Exception:  # a builder that needs real tensors: no probe, take the candidate
        return True
    try:
        with torch.no_grad():
            model(_to_meta(x))
    except (RuntimeError, ValueError):
        return False
    return True


def _to_meta(x: object) -> object:
    if isinstance(x, torch.Tensor):
        return x.to("meta")
    if isinstance(x, tuple | list):
        return type(x)(_to_meta(v) for v in x)
    if isinstance(x, dict):
        return {k: _to_meta(v) for k, v in x.items()}
    return x


def _reduced_input(name: str, batch: int) -> object:
    """The override, else the first reduced clip the model accepts (probed on the meta device, which costs
    nothing): 8 frames at 32 then 64 pixels, then the card's frame count at those sizes, then the default."""
    card = get_card(name)
    if name in INPUT_OVERRIDES:
        frames, size = INPUT_OVERRIDES[name]
        return example_input(card, batch=batch, num_frames=frames, size=size)
    frames = min(REDUCED_FRAMES, card.num_frames)
    sizes = [min(size, card.crop_size) for size in REDUCED_SIZES]
    candidates = [(frames, size) for size in sizes] + [(card.num_frames, size) for size in sizes]
    for frames, size in candidates:
        x = example_input(card, batch=batch, num_frames=frames, size=size)
        if _runs_on_meta(name, x):
            return x
    return example_input(card, batch=batch)


def _perturbed(x: object) -> object:
    """The same input structure with random values (zeros would hide dead paths)."""
    if isinstance(x, torch.Tensor):
        return torch.randn_like(x)
    if isinstance(x, tuple | list):
        return type(x)(_perturbed(v) for v in x)
    if isinstance(x, dict):
        return {k: _perturbed(v) for k, v in x.items()}
    return x


def test_registry_is_not_empty() -> None:
    assert len(ALL_MODELS) >= 8


@pytest.mark.parametrize("name", _marked(ALL_MODELS))
def test_forward_backward_and_reset(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=NUM_CLASSES)
    for method in ("forward_features", "forward_head", "reset_classifier"):
        assert callable(getattr(model, method, None)), f"{name} has no {method}()"
    model.eval()  # running statistics: one small batch must not decide the output
    x = _perturbed(_reduced_input(name, batch=1))
    logits = model(x)
    assert logits.shape == (1, NUM_CLASSES)
    assert torch.isfinite(logits).all()

    logits.square().mean().backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not no_grad, f"{name}: parameters outside the graph: {no_grad[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)

    with torch.no_grad():
        feats = model.forward_features(x)
        model.reset_classifier(NUM_CLASSES + 2)
        assert model.forward_head(feats).shape == (1, NUM_CLASSES + 2)
        assert model(x).shape == (1, NUM_CLASSES + 2)


PUBLISHED = [n for n in ALL_MODELS if get_card(n).published_params_m or get_card(n).published_gmacs]


@pytest.mark.parametrize("name", PUBLISHED)
def test_published_params_and_gmacs(name: str) -> None:
    """Params within 1 % and GMACs within 5 % of the card's, at the input the card says (on meta)."""
    card = get_card(name)
    model = build_for_counting(name, num_classes=num_classes_for(card))
    if card.published_params_m:
        params_m = count_params(model) / 1e6
        assert params_m == pytest.approx(card.published_params_m, rel=0.01), f"{name}: {params_m:.3f}M params"
    if card.published_gmacs:
        spec = measurement_spec(card)
        gmacs = count_macs(model, input_for_spec(card, spec, device="meta")) / 1e9
        assert gmacs == pytest.approx(card.published_gmacs, rel=0.05), f"{name}: {gmacs:.2f} GMACs at {spec}"
