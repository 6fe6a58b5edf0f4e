"""load_weights / save_weights / read_card: every layout round-trips, every bad file is one clear error."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from actionrec.errors import WeightsError
from actionrec.layers.inflate import inflate, inflate_weight
from actionrec.layers.same_pad import Conv3dSame
from actionrec.models.i3d import I3D, I3DTwoStream
from actionrec.models.registry import create_model
from actionrec.weights import load_weights, read_card, save_weights

# Our branch names -> DeepMind's (written out here independently of the converter).
BRANCHES = {
    "b0": "Branch_0/Conv3d_0a_1x1",
    "b1a": "Branch_1/Conv3d_0a_1x1",
    "b1b": "Branch_1/Conv3d_0b_3x3",
    "b2a": "Branch_2/Conv3d_0a_1x1",
    "b2b": "Branch_2/Conv3d_0b_3x3",
    "b3b": "Branch_3/Conv3d_0b_1x1",
}


class Tiny(nn.Module):
    def __init__(self, num_classes: int = 5) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.features = nn.Conv3d(3, 4, 3)
        self.bn = nn.BatchNorm3d(4)
        self.fc = nn.Linear(4, num_classes)


@pytest.fixture(scope="module")
def source() -> I3D:
    """An I3D with random weights and random BatchNorm statistics."""
    torch.manual_seed(0)
    model = I3D(num_classes=7)
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith("running_mean"):
                buf.normal_(0, 0.1)
            elif name.endswith("running_var"):
                buf.uniform_(0.5, 1.5)
        for p in model.parameters():
            p.normal_(0, 0.05)
    return model


def _units(sd: dict[str, torch.Tensor]) -> dict[str, str]:
    """Our Unit3d prefixes -> DeepMind unit paths."""
    units = {}
    for key in sd:
        if key.endswith(".conv.weight"):
            prefix = key[: -len(".conv.weight")]
            parts = prefix.split(".")[1:]  # drop "features"
            units[prefix] = parts[0] if len(parts) == 1 else f"{parts[0]}/{BRANCHES[parts[1]]}"
    return units


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy().copy()


def to_deepmind_flax(sd: dict[str, torch.Tensor]) -> dict:
    tree: dict = {"params": {}, "batch_stats": {}}
    for prefix, unit in _units(sd).items():
        top, _, rest = unit.partition("/")
        params = tree["params"].setdefault(top, {})
        stats = tree["batch_stats"].setdefault(top, {})
        params, stats = (params.setdefault(rest, {}), stats.setdefault(rest, {})) if rest else (params, stats)
        params["Conv_0"] = {"kernel": _np(sd[f"{prefix}.conv.weight"].permute(2, 3, 4, 1, 0))}
        params["BatchNorm_0"] = {"bias": _np(sd[f"{prefix}.bn.bias"])}
        stats["BatchNorm_0"] = {
            "mean": _np(sd[f"{prefix}.bn.running_mean"]).reshape(1, 1, 1, 1, -1),
            "var": _np(sd[f"{prefix}.bn.running_var"]).reshape(1, 1, 1, 1, -1),
        }
    tree["params"]["Logits/Conv3d_0c_1x1"] = {
        "Conv_0": {
            "kernel": _np(sd["head.logits.weight"].permute(2, 3, 4, 1, 0)),
            "bias": _np(sd["head.logits.bias"]),
        }
    }
    return tree


def to_deepmind_tf(sd: dict[str, torch.Tensor], stream: str = "RGB") -> dict[str, np.ndarray]:
    out = {}
    root = f"{stream}/inception_i3d"
    for prefix, unit in _units(sd).items():
        out[f"{root}/{unit}/conv_3d/w"] = _np(sd[f"{prefix}.conv.weight"].permute(2, 3, 4, 1, 0))
        out[f"{root}/{unit}/batch_norm/beta"] = _np(sd[f"{prefix}.bn.bias"])
        out[f"{root}/{unit}/batch_norm/moving_mean"] = _np(sd[f"{prefix}.bn.running_mean"]).reshape(
            1, 1, 1, 1, -1
        )
        out[f"{root}/{unit}/batch_norm/moving_variance"] = _np(sd[f"{prefix}.bn.running_var"]).reshape(
            1, 1, 1, 1, -1
        )
    out[f"{root}/Logits/Conv3d_0c_1x1/conv_3d/w"] = _np(sd["head.logits.weight"].permute(2, 3, 4, 1, 0))
    out[f"{root}/Logits/Conv3d_0c_1x1/conv_3d/b"] = _np(sd["head.logits.bias"])
    return out


def to_pytorch_i3d(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for prefix in _units(sd):
        name = prefix[len("features.") :]
        out[f"{name}.conv3d.weight"] = sd[f"{prefix}.conv.weight"].clone()
        out[f"{name}.bn.weight"] = torch.ones_like(sd[f"{prefix}.bn.bias"])
        for suffix in ("bias", "running_mean", "running_var", "num_batches_tracked"):
            out[f"{name}.bn.{suffix}"] = sd[f"{prefix}.bn.{suffix}"].clone()
    out["logits.conv3d.weight"] = sd["head.logits.weight"].clone()
    out["logits.conv3d.bias"] = sd["head.logits.bias"].clone()
    return out


def _assert_same(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        if not k.endswith("num_batches_tracked"):
            torch.testing.assert_close(sa[k], sb[k], rtol=0, atol=0, msg=k)


def test_deepmind_flax_pickle_round_trip(source: I3D, tmp_path: Path) -> None:
    path = tmp_path / "i3d.pkl"
    path.write_bytes(pickle.dumps(to_deepmind_flax(source.state_dict()), protocol=4))
    target = I3D(num_classes=7)
    assert load_weights(target, path).layout == "deepmind-flax"
    _assert_same(source, target)


def test_deepmind_tf_names_npz_round_trip(source: I3D, tmp_path: Path) -> None:
    path = tmp_path / "i3d.npz"
    np.savez(path, **to_deepmind_tf(source.state_dict()), global_step=np.array(1000))
    target = I3D(num_classes=7)
    assert load_weights(target, path).layout == "deepmind-tf"
    _assert_same(source, target)


def test_pytorch_i3d_round_trip_and_training_checkpoint(source: I3D, tmp_path: Path) -> None:
    path = tmp_path / "rgb.pt"
    torch.save(
        {"model": {f"module.{k}": v for k, v in to_pytorch_i3d(source.state_dict()).items()}, "epoch": 3},
        path,
    )
    target = I3D(num_classes=7)
    assert load_weights(target, path).layout == "pytorch-i3d"
    _assert_same(source, target)


def test_pytorch_i3d_batchnorm_scale_is_folded_exactly(source: I3D, tmp_path: Path) -> None:
    sd = to_pytorch_i3d(source.state_dict())
    gamma = torch.rand(64) + 0.5
    sd["Conv3d_1a_7x7.bn.weight"] = gamma
    torch.save(sd, tmp_path / "scaled.pt")
    target = I3D(num_classes=7).eval()
    load_weights(target, tmp_path / "scaled.pt")
    x = torch.randn(1, 3, 4, 16, 16)
    conv = Conv3dSame(3, 64, 7, stride=2, bias=False)
    conv.weight.data.copy_(sd["Conv3d_1a_7x7.conv3d.weight"])
    with torch.no_grad():
        expected = torch.relu(
            nn.functional.batch_norm(
                conv(x),
                sd["Conv3d_1a_7x7.bn.running_mean"],
                sd["Conv3d_1a_7x7.bn.running_var"],
                gamma,
                sd["Conv3d_1a_7x7.bn.bias"],
                eps=1e-3,
            )
        )
        torch.testing.assert_close(target.features.Conv3d_1a_7x7(x), expected, rtol=1e-4, atol=1e-5)


def test_two_stream_from_a_two_stream_tf_checkpoint(source: I3D, tmp_path: Path) -> None:
    flow = I3D(num_classes=7, in_channels=2)
    path = tmp_path / "joint.npz"
    np.savez(path, **to_deepmind_tf(source.state_dict(), "RGB"), **to_deepmind_tf(flow.state_dict(), "Flow"))
    two = I3DTwoStream(num_classes=7)
    load_weights(two, path)
    _assert_same(two.rgb, source)
    _assert_same(two.flow, flow)


def test_save_load_card_and_atomic_overwrite(tmp_path: Path) -> None:
    model = Tiny(3)
    model.model_name = "tiny"
    path = tmp_path / "out" / "tiny.safetensors"
    save_weights(model, path, labels=["a", "b", "c"], extra={"note": "x"})
    save_weights(model, path, labels=["a", "b", "c"], extra={"note": "y"})  # overwrite in place
    assert sorted(p.name for p in path.parent.iterdir()) == ["tiny.safetensors"]  # no temp files left
    card = read_card(path)
    assert card == {
        "model": "tiny",
        "num_classes": 3,
        "labels": ["a", "b", "c"],
        "preprocessing": None,
        "note": "y",
    }
    other = Tiny(3)
    result = load_weights(other, path)
    assert result.layout == "actionrec" and result.card == card
    _assert_same(model, other)
    with pytest.raises(WeightsError, match="2 labels given for a model with 3 classes"):
        save_weights(model, path, labels=["a", "b"])


def test_class_count_mismatch_strict_and_lenient(tmp_path: Path) -> None:
    path = tmp_path / "w.pth"
    torch.save(Tiny(400).state_dict(), path)
    model = Tiny(10)
    with pytest.raises(
        WeightsError,
        match=r"checkpoint has 400 classes, model has 10: create the model with "
        r"num_classes=400, or load with strict=False and call "
        r"model.reset_classifier\(10\)",
    ):
        load_weights(model, path)
    fc_before = model.fc.weight.clone()
    result = load_weights(model, path, strict=False)
    assert result.skipped == ["fc.bias", "fc.weight"]
    torch.testing.assert_close(model.features.weight, torch.load(path, weights_only=True)["features.weight"])
    torch.testing.assert_close(model.fc.weight, fc_before)


def test_wrong_architecture_lists_keys(tmp_path: Path) -> None:
    path = tmp_path / "tiny.pt"
    torch.save(Tiny().state_dict(), path)
    with pytest.raises(
        WeightsError, match=r"missing keys e\.g\. features\.Conv3d_1a_7x7.*unexpected keys e\.g\."
    ):
        load_weights(I3D(num_classes=5), path)
    with pytest.raises(WeightsError, match="nothing in it fits"):
        load_weights(I3D(num_classes=5), path, strict=False)


def test_2d_checkpoint_loads_into_inflated_model(tmp_path: Path) -> None:
    model_2d = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8))
    torch.save(model_2d.state_dict(), tmp_path / "2d.pth")
    model_3d = inflate(nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8)), time_kernel=3)
    load_weights(model_3d, tmp_path / "2d.pth")
    torch.testing.assert_close(model_3d[0].weight, inflate_weight(model_2d[0].weight, 3))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "weights file not found"),
        (b"", "empty file"),
        (b"hello, I am a text file\n", "not a weights file"),
        (b"PK\x03\x04broken zip", "truncated or damaged zip"),
    ],
)
def test_bad_files(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "w.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(WeightsError, match=message):
        load_weights(Tiny(), path)


def test_truncated_safetensors(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in Tiny().state_dict().items()}, path)
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(WeightsError, match="truncated or damaged safetensors"):
        load_weights(Tiny(), path)


def test_checksums_and_urls(tmp_path: Path) -> None:
    path = tmp_path / "w.pth"
    torch.save(Tiny().state_dict(), path)
    good = hashlib.sha256(path.read_bytes()).hexdigest()
    load_weights(Tiny(), path, sha256=good)
    with pytest.raises(WeightsError, match="does not match the expected"):
        load_weights(Tiny(), path, sha256="0" * 64)
    with pytest.raises(WeightsError, match="refusing to download weights without a sha256"):
        load_weights(Tiny(), "https://example.com/weights.safetensors")


def test_builder_arguments_travel_with_the_weights(tmp_path: Path) -> None:
    from actionrec.engine.evaluate import model_from_weights

    torch.manual_seed(0)
    model = create_model("r2plus1d_small", num_classes=3, stem_pool=True, temporal_stride=2).eval()
    path = save_weights(model, tmp_path / "m.safetensors", labels=["a", "b", "c"])
    assert read_card(path)["builder_kwargs"] == {"stem_pool": True, "temporal_stride": 2}
    again, labels = model_from_weights(None, path)  # a default-built model would load too, but differ
    x = torch.randn(1, 3, 8, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(again.eval()(x), model(x))
    assert again.forward_features(x).shape == model.forward_features(x).shape and labels == ["a", "b", "c"]
