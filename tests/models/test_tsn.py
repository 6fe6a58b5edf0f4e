"""TSN (Wang et al. 2016, arXiv 1608.00859): inputs, consensus, partial BN, cross-modality init, lr
multipliers, parameter count and MMAction2 checkpoint names.

Each practice has a test that fails without it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torchvision

import actionrec.models.tsn  # noqa: F401  (registers the family)
from actionrec.engine.config import OptimSection
from actionrec.engine.optim import build_optimizer
from actionrec.models import create_model, get_card
from actionrec.models.tsn import TSN
from actionrec.weights.mmaction_tsn import convert_mmaction_tsn, is_mmaction_tsn

SMALL = {"tsn_small": (3, 3), "tsn_small_flow": (2, 15), "tsn_small_rgbdiff": (3, 18)}  # (C, K*F) at K = 3


@pytest.mark.parametrize("name", sorted(SMALL))
def test_small_variants_train(name: str) -> None:
    torch.manual_seed(0)
    c, t = SMALL[name]
    card = get_card(name)
    assert (card.in_channels, card.num_frames, card.sampling) == (c, t, "segment")
    model = create_model(name, num_classes=4).train()
    x = torch.randn(2, c, t, 32, 32)
    logits = model(x)
    assert logits.shape == (2, 4)
    assert model.forward_features(x).shape == (2, 128, 3, 2, 2)  # (B, F, K, h, w): stride 16
    logits.logsumexp(1).mean().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_segments_are_read_from_the_clip() -> None:
    model = create_model("tsn_small_flow", num_classes=4).eval()
    assert model(torch.randn(1, 2, 25 * 5, 32, 32)).shape == (1, 4)  # 25 test segments (§4.1)
    with pytest.raises(ValueError, match="K\\*5"):
        model(torch.randn(1, 2, 12, 32, 32))
    with pytest.raises(ValueError, match="built for 3 segments"):
        create_model("tsn_small", num_classes=4, consensus="weighted").eval()(torch.randn(1, 3, 5, 32, 32))


def test_flow_snippets_stack_x_y_per_field() -> None:
    model = create_model("tsn_small_flow", num_classes=4)
    x = torch.arange(2 * 10, dtype=torch.float32).reshape(1, 2, 10, 1, 1)  # value = 10 * channel + frame
    s = model.snippets(x)  # (B*K, 2L, 1, 1)
    assert s.shape == (2, 10, 1, 1)
    assert s[0].flatten().tolist() == [0, 10, 1, 11, 2, 12, 3, 13, 4, 14]  # x1, y1, x2, y2, ...
    assert s[1].flatten().tolist() == [5, 15, 6, 16, 7, 17, 8, 18, 9, 19]


def test_rgbdiff_stacks_consecutive_differences() -> None:
    model = create_model("tsn_small_rgbdiff", num_classes=4)
    frames = torch.tensor([0.0, 1.0, 3.0, 6.0, 10.0, 15.0]) ** 1  # one segment: differences 1, 2, 3, 4, 5
    x = torch.stack([frames, 10 * frames, 100 * frames]).reshape(1, 3, 6, 1, 1)  # R, G, B
    x = torch.cat([x, -x], 2)  # K = 2 segments of L + 1 = 6 frames
    s = model.snippets(x)
    assert s.shape == (2, 15, 1, 1)
    expected = [v * d for d in (1, 2, 3, 4, 5) for v in (1, 10, 100)]  # dR1, dG1, dB1, dR2, ...
    assert s[0].flatten().tolist() == expected
    assert s[1].flatten().tolist() == [-v for v in expected]


def test_consensus_averages_scores_before_softmax() -> None:
    torch.manual_seed(0)
    model = create_model("tsn_small", num_classes=4).eval()
    x = torch.randn(1, 3, 3, 32, 32)
    per_snippet = torch.stack([model(x[:, :, k : k + 1]) for k in range(3)], 1)  # (1, K, classes)
    assert torch.allclose(model(x), per_snippet.mean(1), atol=1e-5)
    top = create_model("tsn_small", num_classes=4, consensus="max").eval()
    top.load_state_dict(model.state_dict())
    assert torch.allclose(top(x), per_snippet.amax(1), atol=1e-5)


def test_dropout_and_classifier_init() -> None:
    torch.manual_seed(0)
    assert create_model("tsn_small").head.dropout.p == 0.8
    assert create_model("tsn_small_flow").head.dropout.p == 0.7
    assert create_model("tsn_small", dropout=0.5).head.dropout.p == 0.5
    fc = create_model("tsn_small", num_classes=1000).head.fc
    assert fc.weight.std().item() == pytest.approx(0.001, rel=0.05) and not fc.bias.any()


def _bns(model: TSN) -> list[torch.nn.Module]:
    return [m for m in model.backbone.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


def test_partial_bn_trains_only_the_first_batchnorm() -> None:
    torch.manual_seed(0)
    model = create_model("tsn_small", num_classes=4, partial_bn=True).train()
    first, *rest = _bns(model)
    assert first.training and not any(bn.training for bn in rest)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    model(torch.randn(2, 3, 3, 32, 32) * 3 + 1).logsumexp(1).mean().backward()
    opt.step()
    after = model.state_dict()
    names = {id(m): n for n, m in model.named_modules()}
    first_name = names[id(first)]
    assert not torch.equal(after[f"{first_name}.running_mean"], before[f"{first_name}.running_mean"])
    assert not torch.equal(after[f"{first_name}.weight"], before[f"{first_name}.weight"])
    for bn in rest:
        n = names[id(bn)]
        assert not bn.weight.requires_grad and not bn.bias.requires_grad
        for part in ("running_mean", "running_var", "weight", "bias"):
            assert torch.equal(after[f"{n}.{part}"], before[f"{n}.{part}"]), f"{n}.{part} changed"
    off = create_model("tsn_small", num_classes=4).train()  # small: partial BN off by default
    assert all(bn.training and bn.weight.requires_grad for bn in _bns(off))


@pytest.fixture(scope="module")
def imagenet_r50(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    state = torchvision.models.resnet50().state_dict()
    path = tmp_path_factory.mktemp("imagenet") / "resnet50.pth"
    torch.save(state, path)
    return path, state


def test_cross_modality_init_and_lr_multipliers(imagenet_r50: tuple[Path, dict[str, torch.Tensor]]) -> None:
    path, state = imagenet_r50
    model = create_model("tsn_r50_flow", num_classes=4, backbone_weights=str(path))
    conv1 = model.backbone.conv1.weight
    assert conv1.shape == (64, 10, 7, 7)
    mean = state["conv1.weight"].mean(1, keepdim=True)  # averaged over RGB ...
    assert torch.allclose(conv1, mean.expand(-1, 10, -1, -1))  # ... replicated to 2L = 10 channels
    assert torch.equal(model.backbone.layer4[2].conv3.weight, state["layer4.2.conv3.weight"])
    assert model.lr_multipliers() == {"backbone.conv1.weight": 5.0}  # ResNet's conv1 has no bias
    opt = build_optimizer(model, OptimSection(lr=0.01, weight_decay=1e-4))
    fast = [g for g in opt.param_groups if any(p is conv1 for p in g["params"])]
    assert len(fast) == 1 and fast[0]["lr"] == pytest.approx(0.05) and len(fast[0]["params"]) == 1
    assert all(g["lr"] == pytest.approx(0.01) for g in opt.param_groups if g is not fast[0])
    # RGB, or flow from scratch: no cross-modality, no multipliers
    assert create_model("tsn_small_flow", num_classes=4).lr_multipliers() == {}
    # RGB difference: cross-modality init, but conv1 at 1x (the released code speeds up flow only)
    diff = create_model("tsn_r50_rgbdiff", num_classes=4, backbone_weights=str(path))
    assert diff.backbone.conv1.weight.shape[1] == 15 and diff.lr_multipliers() == {}
    # the trainer builds its optimiser on the unwrapped model, so a compiled one keeps its multipliers
    from actionrec.engine.checkpoint import unwrap

    assert unwrap(torch.compile(model)).lr_multipliers() == {"backbone.conv1.weight": 5.0}


def test_r50_parameters_match_mmaction2() -> None:
    with torch.device("meta"):
        model = create_model("tsn_r50", num_classes=400)
    params = sum(p.numel() for p in model.parameters())
    assert params / 1e6 == pytest.approx(24.33, abs=0.005)  # MMAction2's TSN R50 table
    assert get_card("tsn_r50").published_params_m == 24.33


def _to_mmaction(key: str) -> str:
    """Our name -> MMAction2's (ConvModule .conv / .bn, cls_head.fc_cls), written out independently."""
    key = key.replace("head.fc.", "cls_head.fc_cls.")
    key = re.sub(r"^backbone\.conv1\.", "backbone.conv1.conv.", key)
    key = re.sub(r"^backbone\.bn1\.", "backbone.conv1.bn.", key)
    key = re.sub(r"\.conv(\d)\.weight$", r".conv\1.conv.weight", key)
    key = re.sub(r"\.bn(\d)\.", r".conv\1.bn.", key)
    key = key.replace(".downsample.0.", ".downsample.conv.").replace(".downsample.1.", ".downsample.bn.")
    return key


def test_mmaction2_checkpoint_names_map_to_ours() -> None:
    with torch.device("meta"):
        model = create_model("tsn_r50", num_classes=400)
    ours = model.state_dict()
    theirs = {_to_mmaction(k): v for k, v in ours.items()}
    assert "backbone.layer1.0.downsample.conv.weight" in theirs and "backbone.conv1.bn.running_var" in theirs
    assert is_mmaction_tsn(theirs) and not is_mmaction_tsn(ours)
    converted = model.convert_state_dict(theirs)
    assert set(converted) == set(ours)
    assert all(converted[k].shape == v.shape for k, v in ours.items())
    assert convert_mmaction_tsn({"backbone.conv1.weight": ours["backbone.conv1.weight"]}).keys() == {
        "backbone.conv1.weight"
    }  # torchvision-named backbones pass unchanged
