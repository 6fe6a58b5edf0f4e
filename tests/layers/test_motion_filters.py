"""Dynamic motion filters: hand-made kernels (shift, identity), border modes, shapes, gradients, the DMR."""

from __future__ import annotations

import pytest
import torch

from actionrec.layers.motion_filters import (
    DynamicMotionRepresentation,
    MotionFilterGenerator,
    apply_motion_filters,
    reconstruction_loss,
    shift_filter,
)


def _frames(b: int = 2, c: int = 3, t: int = 4, size: int = 9) -> torch.Tensor:
    return torch.randn(b, c, t, size, size, generator=torch.Generator().manual_seed(0))


def test_a_one_pixel_shift_kernel_moves_the_frame_by_one_pixel() -> None:
    frames = _frames()
    right = shift_filter(5, dx=1).expand(2, 4, 25)  # (B, T, k*k)
    out = apply_motion_filters(frames, right, padding="zeros")
    # hand-computed: out[y, x] = in[y, x - 1]; column 0 reads the zero border
    torch.testing.assert_close(out[..., :, 1:], frames[..., :, :-1])
    assert out[..., :, 0].abs().max() == 0
    down = apply_motion_filters(frames, shift_filter(3, dy=1).expand(2, 4, 9), padding="replicate")
    torch.testing.assert_close(down[..., 1:, :], frames[..., :-1, :])
    torch.testing.assert_close(down[..., 0, :], frames[..., 0, :])  # the edge row repeated
    # on a torus (circular border) a shift is exact everywhere: a roll
    left2 = apply_motion_filters(frames, shift_filter(5, dx=-2).expand(2, 4, 25), padding="circular")
    torch.testing.assert_close(left2, frames.roll(-2, dims=-1))


def test_identity_kernel_reproduces_the_frames_and_kernels_are_per_clip_and_step() -> None:
    frames = _frames()
    torch.testing.assert_close(apply_motion_filters(frames, shift_filter(7).expand(2, 4, 49)), frames)
    filters = torch.stack([shift_filter(3), shift_filter(3, dx=1)]).repeat(2, 2, 1)  # (2, 4, 9)
    filters[1] = shift_filter(3, dy=-1)  # clip 1: every step shifts up
    out = apply_motion_filters(frames, filters, padding="circular")
    torch.testing.assert_close(out[0, :, 0], frames[0, :, 0])  # step 0: identity
    torch.testing.assert_close(out[0, :, 1], frames[0, :, 1].roll(1, dims=-1))  # step 1: right
    torch.testing.assert_close(out[1], frames[1].roll(-1, dims=-2))  # clip 1: up


def test_a_hand_computed_blend() -> None:
    frame = torch.arange(9.0).view(1, 1, 1, 3, 3)  # [[0 1 2] [3 4 5] [6 7 8]]
    kernel = 0.5 * shift_filter(3) + 0.5 * shift_filter(3, dx=1)  # half stay, half move right
    out = apply_motion_filters(frame, kernel.view(1, 1, 9), padding="zeros")
    expected = torch.tensor([[0.0, 0.5, 1.5], [1.5, 3.5, 4.5], [3.0, 6.5, 7.5]])
    torch.testing.assert_close(out[0, 0, 0], expected)


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="k\\*k"):
        apply_motion_filters(_frames(), torch.zeros(2, 4, 8))
    with pytest.raises(ValueError, match="need \\(B, T, k\\*k\\)"):
        apply_motion_filters(_frames(), torch.zeros(2, 3, 9))
    with pytest.raises(ValueError, match="odd"):
        shift_filter(4)


def test_generator_shapes_start_and_gradients() -> None:
    torch.manual_seed(0)
    gen = MotionFilterGenerator(16, filter_size=5, hidden=8)
    feats = torch.randn(2, 16, 2, 3, 3, requires_grad=True)  # (B, C', T', h, w): time strided 4x
    filters = gen(feats, 8)
    assert filters.shape == (2, 8, 25)
    torch.testing.assert_close(filters.sum(-1), torch.ones(2, 8))  # softmax over the taps
    assert (filters.argmax(-1) == 12).all()  # a fresh generator favours the centre tap (copy the frame)
    frames = _frames(t=8)
    target = frames.roll(1, dims=-1)
    loss = reconstruction_loss(apply_motion_filters(frames, filters, padding="circular"), target)
    loss.backward()
    assert feats.grad is not None and feats.grad.abs().sum() > 0  # through the kernels into the features
    for name, p in gen.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    free = MotionFilterGenerator(16, filter_size=3, hidden=8, normalize=False)
    torch.testing.assert_close(free(feats.detach(), 4), shift_filter(3).expand(2, 4, 9), atol=0.2, rtol=0)


def test_gradients_reach_the_kernels() -> None:
    frames = _frames()
    filters = torch.full((2, 4, 9), 1 / 9, requires_grad=True)
    reconstruction_loss(apply_motion_filters(frames, filters), frames.roll(1, -1), loss="l2").backward()
    assert filters.grad is not None and filters.grad.abs().sum() > 0


def test_dmr_concatenates_or_reduces() -> None:
    filters = torch.rand(2, 8, 49)
    plain = DynamicMotionRepresentation(8, 7)
    assert plain.out_features == 8 * 49
    torch.testing.assert_close(plain(filters), filters.flatten(1))
    reduced = DynamicMotionRepresentation(8, 7, dim=32)
    assert reduced(filters).shape == (2, 32) and reduced.out_features == 32
