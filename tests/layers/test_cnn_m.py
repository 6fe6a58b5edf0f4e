"""CNN-M-2048 (Chatfield et al. 2014 as used by Simonyan & Zisserman 2014): shapes, parameters, no LRN2."""

from __future__ import annotations

import torch
from torch import nn

from actionrec.layers.cnn_m import CNNM2048
from actionrec.models.complexity import count_params


def test_shapes_and_measured_params() -> None:
    with torch.device("meta"):
        net = CNNM2048(num_classes=101)
        maps = net.features(torch.zeros(1, 3, 224, 224))
        assert maps.shape == (1, 512, 13, 13)
        assert net.pool5(maps).shape == (1, 512, 6, 6)
        assert net(torch.zeros(2, 3, 224, 224)).shape == (2, 101)
    assert count_params(net) == 90_627_813
    with torch.device("meta"):
        flow = CNNM2048(in_channels=20, num_classes=0, lrn2=False)
    assert count_params(flow) == 90_420_864 + 17 * 96 * 7 * 7
    assert sum(isinstance(m, nn.LocalResponseNorm) for m in flow.modules()) == 1


def test_runs_below_224() -> None:
    net = CNNM2048(num_classes=3).eval()
    assert net(torch.randn(1, 3, 64, 64)).shape == (1, 3)
