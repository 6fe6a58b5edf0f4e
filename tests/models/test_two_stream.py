"""Two-stream networks (Simonyan & Zisserman 2014): inputs, cross-modality init, joint training."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from actionrec.engine.config import TaskSection
from actionrec.engine.tasks import Task
from actionrec.models import create_model, example_input
from actionrec.models.resnet3d import VideoResNet, small_config
from actionrec.models.two_stream import build_tower, centre_frames, stack_flow, subtract_mean_flow

SMALL = ("two_stream_small", "spatial_small", "temporal_small")


def test_mean_flow_subtraction_per_field() -> None:
    flow = torch.randn(2, 2, 3, 5, 5) + torch.tensor([3.0, -1.0]).view(1, 2, 1, 1, 1)
    out = subtract_mean_flow(flow)
    torch.testing.assert_close(out.mean(dim=(3, 4)), torch.zeros(2, 2, 3), atol=1e-6, rtol=0)
    torch.testing.assert_close(out[0, 1, 2], flow[0, 1, 2] - flow[0, 1, 2].mean())


def test_flow_stacking_order_and_centre_frame() -> None:
    t = torch.arange(6.0)  # 2 snippets of L = 3; value = 10 * component + frame
    flow = (t.view(1, 1, 6, 1, 1) + torch.tensor([0.0, 10.0]).view(1, 2, 1, 1, 1)).expand(1, 2, 6, 2, 2)
    stacked = stack_flow(flow, 3, mean_subtraction=False)
    assert stacked.shape == (2, 6, 2, 2)
    assert stacked[:, :, 0, 0].tolist() == [[0, 10, 1, 11, 2, 12], [3, 13, 4, 14, 5, 15]]  # x1 y1 x2 y2 ...
    rgb = t.view(1, 1, 6, 1, 1).expand(1, 3, 6, 2, 2)
    assert centre_frames(rgb, 3)[:, 0, 0, 0].tolist() == [1.0, 4.0]
    with pytest.raises(ValueError):
        stack_flow(flow, 4)


def test_cross_modality_init_is_the_replicated_rgb_mean(tmp_path: Path) -> None:
    rgb = VideoResNet(small_config(temporal_kernel=1), num_classes=7)
    path = tmp_path / "rgb.pt"
    torch.save({f"trunk.{k}": v for k, v in rgb.state_dict().items()}, path)
    model = create_model("two_stream_small", num_classes=4, backbone_weights=str(path))
    w = rgb.stem[0].weight  # (11, 3, 1, 7, 7)
    flow_w = model.temporal.features.trunk.stem[0].weight
    assert flow_w.shape == (11, 20, 1, 7, 7)
    torch.testing.assert_close(flow_w, w.mean(1, keepdim=True).expand_as(flow_w))
    torch.testing.assert_close(model.spatial.features.trunk.stem[0].weight, w)
    deep = {k: v for k, v in model.temporal.features.trunk.state_dict().items() if k.startswith("layer4")}
    for key, value in deep.items():  # every later layer is the RGB network's
        torch.testing.assert_close(value, rgb.state_dict()[key])
    single = create_model("temporal_small", num_classes=4, backbone_weights=str(path))
    torch.testing.assert_close(single.tower.features.trunk.stem[0].weight, flow_w)


def test_cross_modality_init_of_a_torchvision_backbone() -> None:
    import torchvision

    state = torchvision.models.resnet18().state_dict()
    tower = build_tower("r18", in_channels=20, num_classes=3, temporal=True, backbone_weights=state)
    conv1 = tower.features[0].weight
    torch.testing.assert_close(conv1, state["conv1.weight"].mean(1, keepdim=True).expand(-1, 20, -1, -1))


@pytest.mark.parametrize("name", SMALL)
def test_forward_backward_every_parameter(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=5).train()
    x = example_input(name, batch=2, size=32)
    x = {k: torch.randn_like(v) for k, v in x.items()} if isinstance(x, dict) else torch.randn_like(x)
    out = model(x)
    logits = out["logits"] if isinstance(out, dict) else out
    assert logits.shape == (2, 5)
    logits.sum().backward() if not isinstance(out, dict) else out["step_logits"].square().mean().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    with torch.no_grad():
        feats = model.forward_features(x)
        model.reset_classifier(7)
        assert model.forward_head(feats).shape == (2, 7) and model(x).shape == (2, 7)


def test_joint_model_trains_both_towers_and_fuses_softmax() -> None:
    torch.manual_seed(0)
    model = create_model("two_stream_small", num_classes=3).train()
    x = {"rgb": torch.randn(2, 3, 10, 32, 32), "flow": torch.randn(2, 2, 10, 32, 32)}
    y = torch.tensor([0, 2])
    out = model(x)
    assert out["step_logits"].shape == (2, 2, 3) and out["step_weights"].tolist() == [1.0, 1.0]
    terms, _ = Task(TaskSection()).terms(out, y)
    s, t = out["step_logits"].unbind(1)
    want = (F.cross_entropy(s, y) + F.cross_entropy(t, y)) / 2
    torch.testing.assert_close(terms["cls"], want)
    torch.testing.assert_close(out["logits"].softmax(-1), (s.softmax(-1) + t.softmax(-1)) / 2)
    terms["cls"].backward()
    assert model.spatial.fc.weight.grad.abs().sum() > 0 and model.temporal.fc.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        assert isinstance(model(x), torch.Tensor)
