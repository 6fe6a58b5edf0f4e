"""TAda2D (actionrec.models.tada): shapes, gradients, zero-init equivalence, official checkpoint layout."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import actionrec.models.tada as tada
from actionrec.models.complexity import count_macs, count_params
from actionrec.models.registry import create_model, get_card
from actionrec.weights.convert import match_state_dict, prepare_state_dict

FIXTURES = Path(__file__).parents[1] / "data" / "tada"


pytestmark = pytest.mark.usefixtures("one_thread")


def _clip(batch: int = 2, size: int = 48) -> torch.Tensor:
    return torch.randn(batch, 3, 8, size, size, generator=torch.Generator().manual_seed(0))


def _perturb(model: torch.nn.Module, seed: int = 0) -> None:
    """Move every zero-started tensor (BN0, generator ``b``, attention gate) and the BN statistics."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("rf.b.weight", "attn.gamma")) or ".bn" in name or "pool_bn" in name:
                p.add_(torch.randn(p.shape, generator=g) * 0.2)
        for name, b in model.named_buffers():
            if name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=g) + 0.5)
            elif name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=g) * 0.1)


@pytest.mark.parametrize("name", ["tada_small", "dynconv_small"])
def test_shapes_and_gradients(name: str) -> None:
    model = create_model(name, num_classes=7)
    x = _clip()
    features = model.forward_features(x)
    assert features.shape == (2, 512, 8, 2, 2)  # T kept; 48 -> 24 (stem) -> 12 -> 6 -> 3 -> 2
    logits = model(x)
    assert logits.shape == (2, 7)
    logits.square().sum().backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    # the generator's last conv gets gradient although it starts at zero (so calibration can learn)
    assert grads["layer2.0.conv2.rf.b.weight"].abs().sum() > 0
    assert grads["layer2.0.pool_bn.weight"].abs().sum() > 0
    assert (model.layer1[0].conv2.attn is not None) == (name == "dynconv_small")


def test_no_temporal_downsampling_r50_shapes() -> None:
    model = tada.tada_r50()
    out = model.forward_features(torch.zeros(1, 3, 8, 64, 64))
    assert out.shape == (1, 2048, 8, 2, 2)  # 64 / 32 in space, all 8 frames kept


def test_fresh_model_equals_plain_per_frame_resnet() -> None:
    torch.manual_seed(0)
    full = tada.tada_small(num_classes=5, dropout=0.0)  # no dropout: compare in train mode too
    plain = tada.tada_small(num_classes=5, dropout=0.0, calibrate=False, avgpool_branch=False)
    # the plain network has exactly the full one's weights minus the generators and BN0
    extra = [k for k in full.state_dict() if ".rf." in k or ".pool_bn." in k]
    assert extra and all(k not in plain.state_dict() for k in extra)
    missing, unexpected = plain.load_state_dict(full.state_dict(), strict=False)
    assert not missing and sorted(unexpected) == sorted(extra)
    x = _clip()
    for mode in ("train", "eval"):
        full.train(mode == "train")
        plain.train(mode == "train")
        torch.testing.assert_close(full(x), plain(x), rtol=1e-5, atol=1e-5)
    # and it stops being equal once the calibration moves
    _perturb(full)
    plain.load_state_dict(full.state_dict(), strict=False)
    full.eval()
    plain.eval()
    assert (full(x) - plain(x)).abs().max() > 1e-3


def _official_state_dict(model: tada.TAda2D) -> dict[str, torch.Tensor]:
    """Our state dict -> the official layout, written from the official module names (not by inverting
    ``convert_state_dict``): ``ResNet3D`` holds ``conv1`` (``Base2DStem``: ``a``, ``a_bn``) and stages
    ``conv2..conv5`` of ``res_1..res_n`` (``Base3DResStage``); a ``Base3DBlock`` holds ``short_cut``,
    ``short_cut_bn`` and ``conv_branch`` (``TAda2DBlock``: ``a, a_bn, b, b_rf, b_bn, b_avgpool_bn, c, c_bn``);
    ``BaseHead`` holds ``out``. The official TAdaConv2d weight is (1, 1, C_out, C_in, k, k)."""
    branch = {"conv1": "a", "bn1": "a_bn", "conv2": "b", "bn2": "b_bn", "pool_bn": "b_avgpool_bn"}
    branch |= {"conv3": "c", "bn3": "c_bn"}
    out = {}
    for key, value in model.state_dict().items():
        if key.startswith("stem."):
            index, rest = key.removeprefix("stem.").split(".", 1)
            new = f"backbone.conv1.{ {'0': 'a', '1': 'a_bn'}[index] }.{rest}"
        elif key.startswith("head.fc."):
            new = "head.out." + key.removeprefix("head.fc.")
        else:
            m = re.fullmatch(r"layer(\d)\.(\d+)\.(.+)", key)
            assert m is not None, key
            block = f"backbone.conv{int(m[1]) + 1}.res_{int(m[2]) + 1}"
            rest = m[3]
            if rest.startswith("downsample."):
                index, param = rest.removeprefix("downsample.").split(".", 1)
                new = f"{block}.{ {'0': 'short_cut', '1': 'short_cut_bn'}[index] }.{param}"
            elif rest.startswith("conv2.rf."):
                new = f"{block}.conv_branch.b_rf.{rest.removeprefix('conv2.rf.')}"
            else:
                module, param = rest.rsplit(".", 1)
                new = f"{block}.conv_branch.{branch[module]}.{param}"
                if module == "conv2" and param == "weight":
                    value = value[None, None]  # (C_out, C_in, k, k) -> (1, 1, C_out, C_in, k, k)
        out[new] = value.clone()
    return out


@pytest.mark.parametrize("wrap", ["plain", "model_state+module"])
def test_official_layout_round_trip(wrap: str) -> None:
    torch.manual_seed(0)
    source = tada.tada_small(num_classes=6)
    _perturb(source, seed=3)
    official = _official_state_dict(source)
    assert "backbone.conv2.res_1.conv_branch.b_rf.g.weight" in official
    assert official["backbone.conv3.res_1.conv_branch.b.weight"].shape == (1, 1, 32, 32, 3, 3)
    raw: object = official
    if wrap != "plain":
        raw = {"model_state": {f"module.{k}": v for k, v in official.items()}}
    target = tada.tada_small(num_classes=6)
    sd = prepare_state_dict(target, raw, name="official")
    assert match_state_dict(target, sd).exact
    target.load_state_dict(sd)
    source.eval()
    target.eval()
    x = _clip()
    torch.testing.assert_close(target(x), source(x), rtol=0, atol=0)
    # our own layout passes through unchanged
    assert target.convert_state_dict(source.state_dict()).keys() == source.state_dict().keys()


def test_official_code_logits() -> None:
    """Logits of the official TAda2D code (tiny, random weights; see make_official_fixture.py)."""
    state = torch.load(FIXTURES / "official_tiny.pt", weights_only=True)
    io = torch.load(FIXTURES / "official_tiny_io.pt", weights_only=True)
    model = tada.TAda2D(num_classes=10, widths=(4, 8, 16, 32), depths=(1, 1, 1, 1), stem_channels=8)
    sd = prepare_state_dict(model, state, name="official_tiny.pt")
    match = match_state_dict(model, sd)
    assert match.exact, match
    model.load_state_dict(sd)
    model.eval()
    with torch.no_grad():
        logits = model(io["input"].float())
    assert (logits - io["logits"]).abs().max() < 1e-4


def test_cards_and_overrides() -> None:
    card = get_card("tada_r50")
    assert (card.num_frames, card.frame_interval, card.crop_size, card.short_side) == (8, 8, 224, 256)
    assert card.normalization == "imagenet" and card.arxiv == "2110.06178"
    model = create_model("tada_small", calibrate=False, global_context=False, avgpool_branch=False)
    assert model.layer1[0].conv2.rf is None and model.layer1[0].pool_bn is None
    model = create_model("tada_small", global_context=False)
    assert model.layer1[0].conv2.rf.g is None
    assert create_model("dynconv_small", temporal_attention=2).layer1[0].conv2.attn.window == 2


def test_r50_params_and_macs() -> None:
    """ResNet-50 (24.3M) + generators and BN0: the official code's model, key for key (the fixture test);
    at the 256-px test crop within 1 % of the paper's ~43 GFLOPs a view (multiply-adds)."""
    model = tada.tada_r50()
    assert count_params(model) == 27_485_472
    macs = count_macs(model, torch.zeros(1, 3, 8, 224, 224))
    assert abs(macs / 1e9 - 33.02) < 0.01
    assert count_macs(model, torch.zeros(1, 3, 8, 256, 256)) / 1e9 == pytest.approx(43.0, rel=0.01)


def test_clip_consistency_term_while_training_only() -> None:
    from actionrec.engine.config import TaskSection
    from actionrec.engine.tasks import Task

    torch.manual_seed(0)
    model = tada.tada_small(num_classes=5, consistency_parts=2)
    x = _clip()
    out = model.train()(x)
    assert set(out) == {"logits", "losses"} and set(out["losses"]) == {"consistency"}
    task = Task(TaskSection(loss_weights={"consistency": 0.5}))
    terms, _ = task.terms(out, torch.tensor([0, 1]))
    total = task.total(terms)
    assert torch.isclose(total, terms["cls"] + 0.5 * terms["consistency"])
    total.backward()
    assert model.layer1[0].conv2.rf.b.weight.grad.abs().sum() > 0  # it reaches the calibration
    assert isinstance(model.eval()(x), torch.Tensor)  # evaluation and prediction get plain logits


def test_imagenet_resnet_initialisation(tmp_path: Path) -> None:
    """A torchvision ResNet-50 state dict (random weights here) loads strictly: every 2D kernel becomes
    the per-frame kernel, the calibration stays at identity, and the network computes the image
    ResNet on every frame (with TAda's stride-2 res2 in place of the max pool)."""
    import torchvision

    from actionrec.weights import load_weights

    torch.manual_seed(0)
    image = torchvision.models.resnet50(weights=None, num_classes=1000).eval()
    _perturb(image, seed=1)
    model = tada.tada_r50(num_classes=10, dropout=0.0).eval()
    sd = prepare_state_dict(model, image.state_dict(), name="resnet50")
    torch.testing.assert_close(sd["stem.0.weight"][:, :, 0], image.conv1.weight)
    torch.testing.assert_close(sd["layer3.2.conv2.weight"], image.layer3[2].conv2.weight)
    torch.testing.assert_close(
        sd["layer4.0.downsample.0.weight"][:, :, 0], image.layer4[0].downsample[0].weight
    )
    assert not sd["layer1.0.conv2.rf.b.weight"].any()  # the calibration at identity
    assert sd["head.fc.weight"].shape == (10, 2048)  # 1000 ImageNet classes: the model's own head kept
    file = tmp_path / "resnet50.pth"
    torch.save(image.state_dict(), file)
    load_weights(model, file)  # strict: every key of the model is filled
    x = torch.randn(1, 3, 4, 64, 64)
    image.maxpool = torch.nn.Identity()  # TAda has no max pool: res2's first block has stride 2
    image.layer1[0].conv2.stride = (2, 2)
    image.layer1[0].downsample[0].stride = (2, 2)
    trunk = torch.nn.Sequential(*list(image.children())[:-2])
    frames = x.transpose(1, 2).flatten(0, 1)  # (B, 3, T, H, W) -> (B*T, 3, H, W)
    per_frame = trunk(frames).mean((2, 3)).view(1, 4, -1).mean(1)  # pooled over space, then time
    with torch.no_grad():
        ours = model.head.pool(model.forward_features(x))
    torch.testing.assert_close(ours, per_frame, rtol=1e-4, atol=1e-4)


def test_weights_saved_before_the_offset_bias_still_load() -> None:
    old = tada.dynconv_small(num_classes=5)
    sd = {k: v for k, v in old.state_dict().items() if not k.endswith("attn.offset_bias")}
    new = tada.dynconv_small(num_classes=5)
    converted = new.convert_state_dict(sd)
    new.load_state_dict(converted)  # strict
    assert not new.layer1[0].conv2.attn.offset_bias.any()
    with pytest.raises(ValueError, match="consistency_parts"):
        tada.tada_small(consistency_parts=1)
