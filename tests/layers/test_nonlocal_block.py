"""NonLocalBlock: identity at init, each pairwise function against its formula in the paper."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from actionrec.layers.nonlocal_block import MODES, NonLocalBlock


def _reference(block: NonLocalBlock, x: torch.Tensor) -> torch.Tensor:
    """y_i = 1/C(x) sum_j f(x_i, x_j) g(x_j), written position by position (§3.2)."""
    pooled = F.max_pool3d(x, (1, 2, 2), ceil_mode=True) if isinstance(block.pool, nn.MaxPool3d) else x
    xs, ps = x.flatten(2)[0].t(), pooled.flatten(2)[0].t()  # (N, C), (M, C)
    g = block.g(pooled).flatten(2)[0].t()  # (M, Ci)
    if block.mode == "gaussian":
        f = torch.exp(xs @ ps.t())
        weights = f / f.sum(1, keepdim=True)
    else:
        theta, phi = block.theta(x).flatten(2)[0].t(), block.phi(pooled).flatten(2)[0].t()
        if block.mode == "embedded_gaussian":
            f = torch.exp(theta @ phi.t())
            weights = f / f.sum(1, keepdim=True)
        elif block.mode == "dot_product":
            weights = theta @ phi.t() / phi.shape[0]
        else:  # concatenation: build [theta_i, phi_j] for every pair explicitly
            n, m = theta.shape[0], phi.shape[0]
            pairs = torch.cat([theta[:, None].expand(n, m, -1), phi[None].expand(n, m, -1)], dim=-1)
            weights = F.relu(block.concat_project(pairs)[..., 0]) / m
    y = (weights @ g).t().reshape(1, block.inter_channels, *x.shape[2:])
    return x + block.bn(block.out_conv(y))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("sub_sample", [True, False])
def test_matches_the_papers_formula(mode: str, sub_sample: bool) -> None:
    torch.manual_seed(0)
    block = NonLocalBlock(8, mode=mode, sub_sample=sub_sample).eval()
    nn.init.normal_(block.bn.weight)  # leave the zero init so that the block does something
    x = torch.randn(1, 8, 2, 5, 6) * 0.3
    out = block(x)
    assert out.shape == x.shape
    assert not torch.allclose(out, x)
    torch.testing.assert_close(out, _reference(block, x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_identity_at_init_in_train_and_eval(mode: str) -> None:
    block = NonLocalBlock(16, mode=mode)
    x = torch.randn(2, 16, 3, 4, 4)
    torch.testing.assert_close(block.train()(x), x)
    torch.testing.assert_close(block.eval()(x), x)


def test_inserting_a_block_leaves_a_network_unchanged() -> None:
    torch.manual_seed(0)
    conv_a, conv_b = nn.Conv3d(3, 8, 3, padding=1), nn.Conv3d(8, 4, 1)
    plain = nn.Sequential(conv_a, nn.ReLU(), conv_b).eval()
    with_block = nn.Sequential(conv_a, nn.ReLU(), NonLocalBlock(8), conv_b).eval()
    x = torch.randn(2, 3, 4, 8, 8)
    torch.testing.assert_close(with_block(x), plain(x), rtol=0, atol=0)


def test_bottleneck_halves_channels_and_sub_sampling_quarters_keys() -> None:
    block = NonLocalBlock(64)
    assert block.inter_channels == 32
    assert block.g.out_channels == block.theta.out_channels == block.phi.out_channels == 32
    assert block.pool(torch.zeros(1, 64, 4, 14, 14)).shape[-2:] == (7, 7)
    assert NonLocalBlock(64, mode="gaussian").theta is None  # no embedding for plain Gaussian


def test_unknown_mode_rejected() -> None:
    with pytest.raises(ValueError, match="non-local mode"):
        NonLocalBlock(8, mode="cosine")
