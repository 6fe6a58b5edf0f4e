"""Space-Time Region Graph models: the zeroed graph is the backbone, ragged boxes, forward + backward."""

from __future__ import annotations

import pytest
import torch

from actionrec.models import create_model, get_card
from actionrec.models.strg import STRG  # importing registers the models


def _input(batch: int = 2, frames: int = 8, size: int = 48, n: int = 3) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    corner = torch.rand(batch, frames, n, 2) * (size - 16)
    boxes = torch.cat([corner, corner + 8 + torch.rand(batch, frames, n, 2) * 8], -1)  # (B, T, N, 4)
    mask = torch.rand(batch, frames, n) > 0.3
    mask[0, 2] = False  # a frame without boxes
    mask[1] = False  # a clip without any box
    return {
        "rgb": torch.randn(batch, 3, frames, size, size),
        "boxes": boxes * mask[..., None],
        "boxes_mask": mask,
    }


def test_card_declares_the_box_stream() -> None:
    for name in ("strg_small", "strg_i3d_r50", "strg_i3d_r50_nl"):
        assert get_card(name).streams == ("rgb", "boxes") and get_card(name).arxiv == "1806.01810"


def test_zeroed_graph_output_equals_the_backbone_alone() -> None:
    torch.manual_seed(0)
    full = create_model("strg_small", num_classes=5).eval()
    alone = create_model("strg_small", num_classes=5, similarity=False, spatial_temporal=False).eval()
    assert isinstance(full, STRG) and full.graph is not None and alone.graph is None
    alone.backbone.load_state_dict(full.backbone.state_dict())
    c = alone.head.in_features
    with torch.no_grad():
        alone.head.fc.weight.copy_(full.head.fc.weight[:, :c])
        alone.head.fc.bias.copy_(full.head.fc.bias)
        x = _input()
        assert torch.allclose(full(x), alone(x), atol=1e-5)
        torch.nn.init.normal_(full.graph.out.weight)  # once the graph speaks, the outputs differ
        assert not torch.allclose(full(x), alone(x), atol=1e-5)


@pytest.mark.parametrize(("similarity", "spatial_temporal"), [(True, True), (True, False), (False, True)])
def test_variable_boxes_forward_backward(similarity: bool, spatial_temporal: bool) -> None:
    model = create_model(
        "strg_small",
        num_classes=4,
        similarity=similarity,
        spatial_temporal=spatial_temporal,
        zero_init_graph=False,
    )
    x = _input()
    logits = model(x)
    assert logits.shape == (2, 4) and torch.isfinite(logits).all()
    logits.square().mean().backward()
    graph_grads = [p.grad for p in model.graph.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in graph_grads)
    assert any(g.abs().sum() > 0 for g in graph_grads)


def test_no_boxes_at_all_and_a_plain_clip() -> None:
    model = create_model("strg_small", num_classes=3, zero_init_graph=False).eval()
    x = _input(n=3)
    empty = {
        "rgb": x["rgb"],
        "boxes": torch.zeros(2, 8, 0, 4),
        "boxes_mask": torch.zeros(2, 8, 0, dtype=torch.bool),
    }
    with torch.no_grad():
        features = model.forward_features(empty)
        assert features.shape == (2, 128 + 64) and (features[:, 128:] == 0).all()  # no node: zero graph
        assert torch.isfinite(model(x["rgb"])).all()  # a plain clip: one whole-frame box per frame
        model.reset_classifier(7)
        assert model(x).shape == (2, 7)
