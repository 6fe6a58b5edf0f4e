"""I3D Inception-v1: architecture, complexity, heads, DeepMind's real weights against the reference logits."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from actionrec.models import create_model, example_input, get_card
from actionrec.models.complexity import count_macs, count_params
from actionrec.models.i3d import I3D

WEIGHTS = "weights/i3d_rgb_kinetics400_deepmind.pkl"
REFERENCE = "reference/arm_wrestling_i3d_rgb_logits.json"


def reference_clip(video: Path, *, max_frames: int = 250) -> torch.Tensor:
    """The reference JSON's recipe: PyAV rgb24, 25 fps by index, PIL bilinear short side 256, centre 224."""
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        src_fps = float(stream.average_rate)
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    count = min(max_frames, int(np.ceil(len(frames) * 25 / src_fps)))
    indices = [int(k * src_fps / 25) for k in range(count) if k < len(frames) * 25 / src_fps]
    out = []
    for i in indices:
        img = Image.fromarray(frames[i])
        w, h = img.size
        scale = 256 / min(w, h)
        img = img.resize((round(w * scale), round(h * scale)), Image.BILINEAR)
        w, h = img.size
        left, top = round((w - 224) / 2), round((h - 224) / 2)
        out.append(np.asarray(img.crop((left, top, left + 224, top + 224))))
    clip = torch.from_numpy(np.stack(out)).float() / 255 * 2 - 1  # (T, H, W, C) in [-1, 1]
    return clip.permute(3, 0, 1, 2).unsqueeze(0)  # (T, H, W, C) -> (1, C, T, H, W)


def test_shapes_features_head_and_reset() -> None:
    model = I3D(num_classes=7).eval()
    x = torch.randn(2, 3, 8, 64, 32)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (2, 1024, 1, 2, 1)  # T/8, H/32, W/32
        assert model.forward_head(feats).shape == (2, 7)
        assert model.forward_head(feats, pre_logits=True).shape == (2, 1024)
        model.reset_classifier(3)
        assert model(x).shape == (2, 3)
        assert model.head.logits.bias is not None


def test_logits_are_time_average_of_per_step_logits() -> None:
    model = I3D(num_classes=5).eval()
    feats = torch.randn(1, 1024, 4, 7, 7)
    with torch.no_grad():
        pooled = torch.nn.functional.avg_pool3d(feats, (2, 7, 7), stride=1)  # (1, 1024, 3, 1, 1)
        per_step = model.head.logits(pooled).flatten(2)  # (1, 5, 3)
        torch.testing.assert_close(model.forward_head(feats), per_step.mean(-1))


def test_params_and_macs_match_the_paper() -> None:
    card = get_card("i3d_inception_v1")
    model = create_model("i3d_inception_v1")
    assert count_params(model) == 12_689_984  # DeepMind's 12,704,544 numbers minus BN running stats
    macs = count_macs(model, example_input(card))
    assert abs(macs / 1e9 - card.published_gmacs) / card.published_gmacs < 0.05
    assert card.fps == 25 and card.max_frames == 250 and card.normalization == "minus_one_one"


def test_flow_and_two_stream() -> None:
    flow = create_model("i3d_inception_v1_flow", num_classes=4).eval()
    assert flow.features.Conv3d_1a_7x7.conv.weight.shape[1] == 2
    two = create_model("i3d_two_stream", num_classes=4).eval()
    x = {"rgb": torch.randn(1, 3, 8, 32, 32), "flow": torch.randn(1, 2, 16, 32, 32)}
    with torch.no_grad():
        out = two(x)
        torch.testing.assert_close(out, (two.rgb(x["rgb"]) + two.flow(x["flow"])) / 2)
        assert two.forward_head(two.forward_features(x), pre_logits=True).shape == (1, 2048)
    two.reset_classifier(9)
    assert two.rgb.head.logits.out_channels == 9 and two.flow.head.logits.out_channels == 9


def test_real_weights_load_exactly(shared_data: Path) -> None:
    model = create_model("i3d_inception_v1", weights=shared_data / WEIGHTS)
    with (shared_data / WEIGHTS).open("rb") as f:
        tree = pickle.load(f)  # the test trusts this known file; the library never uses pickle.load
    kernel = tree["params"]["Mixed_4f"]["Branch_1/Conv3d_0b_3x3"]["Conv_0"]["kernel"]
    ours = model.features.Mixed_4f.b1b.conv.weight.detach().numpy()
    np.testing.assert_array_equal(ours, kernel.transpose(4, 3, 0, 1, 2))
    var = tree["batch_stats"]["Conv3d_1a_7x7"]["BatchNorm_0"]["var"].reshape(-1)
    np.testing.assert_array_equal(model.features.Conv3d_1a_7x7.bn.running_var.numpy(), var)
    np.testing.assert_array_equal(
        model.head.logits.bias.detach().numpy(), tree["params"]["Logits/Conv3d_0c_1x1"]["Conv_0"]["bias"]
    )


def test_two_stream_from_rgb_weights_initialises_flow_by_cross_modality(shared_data: Path) -> None:
    two = create_model("i3d_two_stream", weights=shared_data / WEIGHTS)
    rgb_stem = two.rgb.features.Conv3d_1a_7x7.conv.weight
    flow_stem = two.flow.features.Conv3d_1a_7x7.conv.weight
    assert flow_stem.shape[1] == 2
    torch.testing.assert_close(flow_stem[:, 1], rgb_stem.mean(dim=1))
    torch.testing.assert_close(
        two.flow.features.Mixed_5c.b0.conv.weight, two.rgb.features.Mixed_5c.b0.conv.weight
    )


@pytest.mark.slow
def test_reference_logits_on_arm_wrestling(shared_data: Path) -> None:
    reference = json.loads((shared_data / REFERENCE).read_text())
    clip = reference_clip(shared_data / reference["video"], max_frames=250)
    assert clip.shape == (1, 3, reference["input_frames"], 224, 224)
    model = create_model("i3d_inception_v1", weights=shared_data / WEIGHTS).eval()
    with torch.no_grad():
        logits = model(clip)[0]
    expected = torch.tensor(reference["logits"])
    diff = (logits - expected).abs().max().item()
    print(f"max |logit - reference| = {diff:.2e}")
    labels = (shared_data / reference["labels"]).read_text().splitlines()
    assert labels[int(logits.argmax())] == "arm wrestling"
    assert diff < 0.5
