"""The space-time blocks against a naive reference that attends over explicit token sets, token by token.

The reference reads each token's (h, w, t) from its index in the (h w t) order and gathers, for every
step of a scheme, the set of tokens each one may attend to; the blocks compute the same with reshapes.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from actionrec.layers.space_time_attention import SCHEMES, SpaceTimeBlock

GRID = (4, 4, 6)  # (T, H, W): even, and H != W so that a transposed reshape would show
DIM, HEADS = 24, 3


def _coords(grid: tuple[int, int, int]) -> list[tuple[int, int, int]]:
    t, h, w = grid
    return [(ti, hi, wi) for hi, wi, ti in itertools.product(range(h), range(w), range(t))]  # (h w t) order


def _set_keys(scheme: str, grid: tuple[int, int, int]) -> list[tuple[str, bool, object]]:
    """(step, with CLS, token coordinates -> the key of the set it attends within) for each step."""
    _, h, w = grid
    if scheme == "divided":
        return [("temporal", False, lambda c: (c[1], c[2])), ("", True, lambda c: c[0])]
    if scheme == "axial":
        return [
            ("temporal", False, lambda c: (c[1], c[2])),
            ("width", False, lambda c: (c[0], c[1])),
            ("", True, lambda c: (c[0], c[2])),
        ]
    if scheme == "local_global":
        return [
            ("local", False, lambda c: (c[1] // (h // 2), c[2] // (w // 2))),
            ("", True, lambda c: (c[0] % 2, c[1] % 2, c[2] % 2)),
        ]
    raise ValueError(scheme)


def _reference(block: SpaceTimeBlock, x: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
    cls, p = x[:, :1], x[:, 1:]
    coords = _coords(grid)
    for step, with_cls, key in _set_keys(block.scheme, grid):
        prefix = f"{step}_" if step else ""
        norm, attn = getattr(block, f"{prefix}norm1"), getattr(block, f"{prefix}attn")
        sets: dict[object, list[int]] = {}
        for i, c in enumerate(coords):
            sets.setdefault(key(c), []).append(i)
        res = torch.zeros_like(p)
        cls_res = []
        for idx in sets.values():
            seq = torch.cat([cls, p[:, idx]], 1) if with_cls else p[:, idx]
            out = attn(norm(seq))
            if with_cls:
                cls_res.append(out[:, :1])
                out = out[:, 1:]
            res[:, idx] = out
        if with_cls:
            cls = cls + torch.stack(cls_res).mean(0)
            p = p + res
        else:
            p = p + getattr(block, f"{step}_fc")(res)
    x = torch.cat([cls, p], 1)
    return x + block.mlp(block.norm2(x))


def _randomise(block: SpaceTimeBlock) -> None:
    with torch.no_grad():
        for p in block.parameters():
            p.normal_(0, 0.3)


@pytest.mark.parametrize("scheme", ["divided", "axial", "local_global"])
def test_factorised_schemes_attend_over_the_papers_token_sets(scheme: str) -> None:
    torch.manual_seed(0)
    block = SpaceTimeBlock(DIM, num_heads=HEADS, scheme=scheme).eval()
    _randomise(block)  # the zero-initialised fc layers would hide the first step
    t, h, w = GRID
    x = torch.randn(2, 1 + t * h * w, DIM)
    with torch.no_grad():
        torch.testing.assert_close(block(x, GRID), _reference(block, x, GRID), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_scheme_keeps_shapes_and_passes_gradients(scheme: str) -> None:
    torch.manual_seed(0)
    block = SpaceTimeBlock(DIM, num_heads=HEADS, scheme=scheme, drop_path=0.1)
    _randomise(block)
    t, h, w = GRID
    x = torch.randn(2, 1 + t * h * w, DIM, requires_grad=True)
    y = block(x, GRID if scheme != "space" else (1, h, w * t))
    assert y.shape == x.shape
    y.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in block.parameters())


@pytest.mark.parametrize("scheme", ["joint", "divided", "local_global", "axial"])
def test_time_mixing_schemes_let_one_frame_change_another(scheme: str) -> None:
    torch.manual_seed(0)
    block = SpaceTimeBlock(DIM, num_heads=HEADS, scheme=scheme).eval()
    _randomise(block)
    t, h, w = GRID
    x = torch.randn(1, 1 + t * h * w, DIM)
    coords = _coords(GRID)
    frame0 = [1 + i for i, c in enumerate(coords) if c[0] == 0]
    frame1 = [1 + i for i, c in enumerate(coords) if c[0] == 1]
    x2 = x.clone()
    x2[:, frame0] += torch.randn(1, len(frame0), DIM)  # (a constant would vanish in LayerNorm)
    with torch.no_grad():
        change = (block(x, GRID) - block(x2, GRID))[:, frame1].abs().max()
    assert change > 1e-3


def test_local_global_refuses_an_odd_grid() -> None:
    block = SpaceTimeBlock(DIM, num_heads=HEADS, scheme="local_global")
    with pytest.raises(ValueError, match="even patch grid"):
        block(torch.randn(1, 1 + 3 * 4 * 4, DIM), (3, 4, 4))


def test_factorised_steps_start_at_zero() -> None:
    block = SpaceTimeBlock(DIM, num_heads=HEADS, scheme="axial")
    assert block.steps == ("temporal", "width")
    for step in block.steps:
        fc = getattr(block, f"{step}_fc")
        assert fc.weight.abs().sum() == 0 and fc.bias.abs().sum() == 0


def test_unknown_scheme() -> None:
    with pytest.raises(ValueError, match="scheme must be one of"):
        SpaceTimeBlock(DIM, num_heads=HEADS, scheme="spiral")
