"""SlowFast R50 (Table 1), its Slow-only / Fast-only baselines and the published costs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from actionrec.data.sampling import slowfast_indices
from actionrec.models import create_model, example_input, get_card
from actionrec.models.complexity import count_macs, count_params
from actionrec.models.slowfast import SingleRate, SlowFast


def _meta(name: str, **kw: object) -> SlowFast | SingleRate:
    with torch.device("meta"):  # structure and cost only: no weight initialisation
        return create_model(name, **kw)


def _kernels(pathway: torch.nn.Module) -> list[int]:
    return [stage[0].conv1.kernel_size[0] for stage in pathway.stages]


def test_table1_structure() -> None:
    model = _meta("slowfast_r50_4x16")
    assert model.slow.stem.conv.kernel_size == (1, 7, 7) and model.fast.stem.conv.kernel_size == (5, 7, 7)
    assert _kernels(model.slow) == [1, 1, 3, 3] and _kernels(model.fast) == [3, 3, 3, 3]
    assert [stage[0].conv1.in_channels for stage in model.slow.stages] == [
        64 + 16,
        256 + 64,
        512 + 128,
        1024 + 256,
    ]
    assert [stage[-1].conv3.out_channels for stage in model.fast.stages] == [32, 64, 128, 256]  # beta = 1/8
    lateral = model.laterals[0].conv
    assert lateral.kernel_size == (5, 1, 1) and lateral.stride == (8, 1, 1) and lateral.out_channels == 16
    assert model.head.in_features == 2048 + 256
    assert _meta("slowfast_r50_8x8").laterals[0].conv.stride == (4, 1, 1)


def test_shapes_with_a_tuple_and_with_one_fast_clip() -> None:
    model = _meta("slowfast_r50_4x16")
    slow, fast = example_input("slowfast_r50_4x16", device="meta")
    assert slow.shape[2] == 4 and fast.shape[2] == 32
    assert model.forward_features((slow, fast)).shape == (1, 2304, 1, 7, 7)
    assert model(fast).shape == (1, 400)
    with pytest.raises(ValueError, match="pair"):
        model((slow, fast, fast))


@pytest.mark.slow
def test_single_clip_is_sliced_like_the_sampler() -> None:
    torch.manual_seed(0)
    model = create_model("slowfast_r50_4x16", num_classes=3).eval()
    fast = torch.randn(1, 3, 16, 16, 16)
    slow_idx, fast_idx = slowfast_indices(100, clip_len=16, frame_interval=2, alpha=8, train=False)
    np.testing.assert_array_equal(slow_idx, fast_idx[:, ::8])  # the sampler's slow frames ...
    sliced, _ = model.split(fast)
    torch.testing.assert_close(sliced, fast[:, :, [0, 8]])  # ... are the ones forward slices
    with torch.no_grad():
        torch.testing.assert_close(model(fast), model((fast[:, :, ::8], fast)))


@pytest.mark.parametrize("name", ["slowfast_r50_4x16", "slowfast_r50_8x8", "slow_only_r50"])
def test_published_costs_at_the_papers_input(name: str) -> None:
    card = get_card(name)
    model = _meta(name)
    macs = count_macs(model, example_input(name, size=256)) / 1e9  # Table 2 counts one 256x256 view
    assert abs(macs - card.published_gmacs) / card.published_gmacs < 0.05
    assert "256x256" in card.published_input
    if card.published_params_m is not None:
        assert abs(count_params(model) / 1e6 - card.published_params_m) / card.published_params_m < 0.01


def test_cards() -> None:
    fast4x16, fast8x8 = get_card("slowfast_r50_4x16"), get_card("slowfast_r50_8x8")
    assert (fast4x16.input_kind, fast4x16.alpha, fast4x16.num_frames, fast4x16.frame_interval) == (
        "slowfast",
        8,
        32,
        2,
    )
    assert (fast8x8.alpha, fast8x8.num_frames, fast8x8.crop_size, fast8x8.short_side) == (4, 32, 224, 256)
    assert get_card("slow_only_r50").input_kind == "clip"


def test_single_pathway_baselines() -> None:
    slow, fast = _meta("slow_only_r50"), _meta("fast_only_r50")
    assert _kernels(slow.pathway) == [1, 1, 3, 3] and _kernels(fast.pathway) == [3, 3, 3, 3]
    assert slow(torch.zeros(1, 3, 8, 224, 224, device="meta")).shape == (1, 400)
    assert fast.forward_features(torch.zeros(1, 3, 32, 224, 224, device="meta")).shape == (1, 256, 32, 7, 7)
