"""Region-graph blocks: IoU adjacency, masked similarity, graph convolution and RoIAlign node features."""

from __future__ import annotations

import pytest
import torch

from actionrec.layers.region_graph import (
    RegionGraphConv,
    SimilarityGraph,
    box_iou,
    frame_boxes,
    iou_adjacency,
    masked_softmax,
    roi_node_features,
)

# Two frames, three box slots each; frame 1's last slot is padding (garbage coordinates, masked).
BOXES = torch.tensor(
    [
        [[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0], [50.0, 50.0, 60.0, 60.0]],
        [[5.0, 0.0, 15.0, 10.0], [20.0, 20.0, 30.0, 30.0], [0.0, 0.0, 10.0, 10.0]],
    ]
)[None]  # (B=1, T=2, N=3, 4)
MASK = torch.tensor([[[True, True, True], [True, True, False]]])


def test_iou_values() -> None:
    iou = box_iou(BOXES[0, 0], BOXES[0, 1])  # (3, 3)
    assert iou[0, 0].item() == pytest.approx(50 / 150)  # half overlap: 50 / (100 + 100 - 50)
    assert iou[1, 1].item() == pytest.approx(1.0) and iou[2, 0].item() == 0.0
    assert box_iou(torch.zeros(1, 4), torch.zeros(1, 4)).item() == 0.0  # no area: no NaN


def test_adjacency_is_row_normalised_and_masked() -> None:
    front, back = iou_adjacency(BOXES, MASK)  # (1, 1, 3, 3) each
    f, b = front[0, 0], back[0, 0]
    # frame 0 box 0 overlaps frame 1 box 0 (1/3) and the padded slot 2 (identical box): padding ignored
    assert f[0].tolist() == pytest.approx([1.0, 0.0, 0.0])
    assert f[1].tolist() == pytest.approx([0.0, 1.0, 0.0])
    assert f[2].tolist() == [0.0, 0.0, 0.0]  # overlaps nothing: a zero row
    assert b[0].tolist() == pytest.approx([1.0, 0.0, 0.0]) and b[2].tolist() == [0.0, 0.0, 0.0]
    assert (f[:, 2] == 0).all() and (b[2] == 0).all()  # the padded box neither receives nor sends
    wide = BOXES.clone()
    wide[0, 1, 1] = torch.tensor([0.0, 0.0, 30.0, 30.0])  # now frame 0's box 0 overlaps two boxes
    f = iou_adjacency(wide, MASK)[0][0, 0]
    assert f[0].sum().item() == pytest.approx(1.0) and (f[0, :2] > 0).all()
    assert f[0, 0] / f[0, 1] == pytest.approx((50 / 150) / (100 / 900))


def test_masked_softmax_never_attends_padding_and_gives_no_nan() -> None:
    logits = torch.randn(2, 4, 4) * 50
    keys = torch.tensor([[True, False, True, False], [False, False, False, False]])
    g = masked_softmax(logits, keys)
    assert (g[0][:, ~keys[0]] == 0).all() and torch.allclose(g[0].sum(-1), torch.ones(4))
    assert (g[1] == 0).all() and torch.isfinite(g).all()  # no valid node: zeros, not NaN


def test_graph_conv_with_an_empty_frame_and_all_padding() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4, 16, requires_grad=True)  # (B, T, N, D)
    boxes = torch.rand(2, 3, 4, 2).mul(20).repeat(1, 1, 1, 2) + torch.tensor([0.0, 0.0, 8.0, 8.0])
    mask = torch.ones(2, 3, 4, dtype=torch.bool)
    mask[0, 1] = False  # a frame without boxes
    mask[1] = False  # a clip without any box
    front, back = iou_adjacency(boxes, mask)
    for sim, st in ((True, True), (True, False), (False, True)):
        layer = RegionGraphConv(16, similarity=sim, spatial_temporal=st)
        out = layer(x, mask, front, back)
        assert out.shape == x.shape and torch.isfinite(out).all()
        assert (out[~mask] == 0).all()  # padded nodes leave as zeros
        out.sum().backward()
        assert torch.isfinite(x.grad).all()
        x.grad = None
    with pytest.raises(ValueError):
        RegionGraphConv(16, similarity=False, spatial_temporal=False)


def test_similarity_graph_masks_keys() -> None:
    g = SimilarityGraph(8)(torch.randn(1, 5, 8), torch.tensor([[True, True, False, True, False]]))
    assert (g[0, :, [2, 4]] == 0).all() and torch.allclose(g.sum(-1), torch.ones(1, 5))


def test_roi_features_project_boxes_and_pass_gradients() -> None:
    """A box on an input-pixel region reads the features of that region (stride 4), with gradients."""
    features = torch.zeros(1, 2, 2, 8, 8)  # (B, C, T', H', W') of a 32 x 32 input
    features[0, 0, 1, 0:2, 6:8] = 5.0  # feature frame 1, top right corner
    features.requires_grad_(True)
    boxes = torch.tensor([[[[24.0, 0.0, 32.0, 8.0], [0.0, 24.0, 8.0, 32.0]]] * 2])  # (1, T'=2, N=2, 4)
    nodes = roi_node_features(features, boxes, (32, 32))  # (1, 2, 2, C)
    assert nodes.shape == (1, 2, 2, 2)
    assert nodes[0, 1, 0, 0].item() == pytest.approx(5.0) and nodes[0, 1, 1, 0].item() == 0.0
    assert nodes[0, 0].abs().max().item() == 0.0  # frame 0 holds nothing there
    nodes.sum().backward()
    assert features.grad is not None and features.grad[0, 0, 1, 0:2, 6:8].sum() > 0


def test_frame_boxes_take_the_centre_frame_of_each_span() -> None:
    boxes = torch.arange(8.0)[None, :, None, None].expand(1, 8, 1, 4)  # frame index as coordinate
    picked, mask = frame_boxes(boxes, torch.ones(1, 8, 1, dtype=torch.bool), 2)
    assert picked[0, :, 0, 0].tolist() == [2.0, 6.0] and mask.shape == (1, 2, 1)
    assert frame_boxes(boxes, torch.ones(1, 8, 1, dtype=torch.bool), 8)[0][0, :, 0, 0].tolist() == list(
        map(float, range(8))
    )
