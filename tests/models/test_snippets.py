"""Ng et al. 2015 ("Beyond Short Snippets"): feature pooling and LSTM heads over a shared frame CNN."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

import actionrec.models.snippets  # noqa: F401  (registers the models)
from actionrec.engine.config import TaskSection
from actionrec.engine.tasks import Task
from actionrec.models import create_model
from actionrec.models.snippets import LSTMHead, weights_over_time

SMALL = [
    "conv_pooling_small",
    "late_pooling_small",
    "slow_pooling_small",
    "local_pooling_small",
    "time_conv_small",
    "lstm_small",
]
K = 5


def _clip(batch: int = 2, frames: int = 8, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 3, frames, size, size, generator=torch.Generator().manual_seed(seed))


def _logits(out: object) -> torch.Tensor:
    return out["logits"] if isinstance(out, dict) else out  # type: ignore[index,return-value]


@pytest.mark.parametrize("name", [*SMALL, "conv_pooling_r18"])
def test_shapes_and_gradients_in_training(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=K).train()
    x = _clip()
    out = model(x)
    assert _logits(out).shape == (2, K)
    assert isinstance(out, dict) == name.startswith("lstm")  # only the LSTM predicts at every step
    _logits(out).square().sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"{name}: no gradient for {missing[:4]}"
    assert model.forward_features(x).shape[:3] == (2, model.num_features, 8)  # (B, F, T, h, w)


def _permuted_logits(name: str, order: list[int], **kwargs: object) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = create_model(name, num_classes=K, **kwargs).eval()
    x = _clip()
    with torch.no_grad():
        return model(x), model(x[:, :, order])


SHUFFLE = [5, 2, 7, 0, 3, 6, 1, 4]


@pytest.mark.parametrize("pool", ["max", "avg"])
@pytest.mark.parametrize("name", ["conv_pooling_small", "late_pooling_small"])
def test_pooling_over_time_ignores_frame_order(name: str, pool: str) -> None:
    a, b = _permuted_logits(name, SHUFFLE, pool=pool)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["slow_pooling_small", "local_pooling_small"])
def test_window_pooling_ignores_order_only_inside_a_window(name: str) -> None:
    """Windows of 4 frames, stride 2: frames 0 and 1 are only in the first window."""
    a, b = _permuted_logits(name, [1, 0, 2, 3, 4, 5, 6, 7])
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    a, b = _permuted_logits(name, SHUFFLE)
    assert not torch.allclose(a, b, atol=1e-4)


@pytest.mark.parametrize("name", ["time_conv_small", "lstm_small"])
def test_time_conv_and_lstm_see_frame_order(name: str) -> None:
    a, b = _permuted_logits(name, SHUFFLE)
    assert not torch.allclose(a, b, atol=1e-4)


def test_step_weights_by_hand() -> None:
    assert weights_over_time(4, "linear").tolist() == pytest.approx([0.0, 1 / 3, 2 / 3, 1.0])
    assert weights_over_time(1, "linear").tolist() == [1.0]
    assert weights_over_time(3, "last").tolist() == [0.0, 0.0, 1.0]
    assert weights_over_time(3, "uniform").tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="step_weights"):
        weights_over_time(3, "exponential")


@pytest.mark.parametrize("scheme", ["linear", "last", "uniform"])
def test_lstm_prediction_is_the_weighted_combination_of_its_steps(scheme: str) -> None:
    torch.manual_seed(0)
    head = LSTMHead(6, 4, hidden=8, num_layers=2, weights=scheme).train()
    feats = torch.randn(2, 6, 3, 2, 2)  # (B, F, T=3, h, w)
    out = head(feats)
    s = out["step_logits"]
    assert s.shape == (2, 3, 4)
    expected = {
        "linear": (0.0 * s[:, 0] + 0.5 * s[:, 1] + 1.0 * s[:, 2]) / 1.5,
        "last": s[:, 2],
        "uniform": (s[:, 0] + s[:, 1] + s[:, 2]) / 3,
    }[scheme]
    torch.testing.assert_close(out["logits"], expected)
    assert (
        out["step_weights"].tolist()
        == {"linear": [0, 0.5, 1], "last": [0, 0, 1], "uniform": [1, 1, 1]}[scheme]
    )
    # step s sees frames 0..s only: changing the last frame leaves the earlier steps alone
    later = feats.clone()
    later[:, :, 2] += 1.0
    torch.testing.assert_close(head(later)["step_logits"][:, :2], s[:, :2])
    torch.testing.assert_close(head.eval()(feats), out["logits"])  # eval: the same logits, as a tensor


def test_lstm_training_step_uses_the_step_weighted_loss() -> None:
    torch.manual_seed(0)
    model = create_model("lstm_small", num_classes=K).train()
    torch.nn.init.normal_(model.head.fc.weight, 0.0, 1.0)  # steps that disagree, so the weighting matters
    labels = torch.tensor([1, 3])
    out = model(_clip())
    terms, logits = Task(TaskSection()).terms(out, labels)
    assert logits is out["logits"]
    per_step = torch.stack([F.cross_entropy(out["step_logits"][:, t], labels) for t in range(8)])  # (T,)
    w = torch.linspace(0, 1, 8)
    torch.testing.assert_close(terms["cls"], (per_step * w).sum() / w.sum())
    assert not torch.allclose(terms["cls"], F.cross_entropy(logits, labels))
    before = model.head.lstm.weight_hh_l0.detach().clone()
    terms["cls"].backward()
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    assert not torch.equal(before, model.head.lstm.weight_hh_l0)


@pytest.mark.filterwarnings("ignore:TF32 acceleration")
def test_chunked_frame_features_equal_one_pass_in_eval() -> None:
    """Bitwise equal with ATen's own convolutions; oneDNN picks kernels by batch size, so an uneven
    chunk (3 frames of 16) may differ from one pass in the last bits there."""
    torch.manual_seed(0)
    whole = create_model("conv_pooling_small", num_classes=K).eval()
    chunked = create_model("conv_pooling_small", num_classes=K, frame_chunk=3).eval()
    chunked.load_state_dict(whole.state_dict())
    x = _clip(batch=2, frames=8)  # 16 frames in chunks of 3, 3, ..., 1
    with torch.no_grad():
        with torch.backends.mkldnn.flags(enabled=False):
            assert torch.equal(whole.forward_features(x), chunked.forward_features(x))
            assert torch.equal(whole(x), chunked(x))
        torch.testing.assert_close(whole.forward_features(x), chunked.forward_features(x), rtol=0, atol=1e-5)


def test_checkpointed_chunks_train_like_plain_chunks() -> None:
    """Same gradients as running the chunks without checkpoints; BatchNorm statistics updated once."""
    torch.manual_seed(0)
    model = create_model("conv_pooling_small", num_classes=K, frame_chunk=4).train()
    reference = copy.deepcopy(model)
    x = _clip(batch=1, frames=8)
    model(x).sum().backward()

    frames = x.transpose(1, 2).reshape(8, 3, 32, 32)  # (1, C, T, H, W) -> (T, C, H, W)
    maps = torch.cat([reference.trunk.net(part) for part in frames.split(4)])  # (T, F, h, w)
    reference.forward_head(maps.transpose(0, 1).unsqueeze(0)).sum().backward()  # (1, F, T, h, w)
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=name)
    for (name, b), c in zip(model.named_buffers(), reference.buffers()):
        assert torch.equal(b, c), name


def test_local_pooling_is_built_for_its_number_of_frames() -> None:
    model = create_model("local_pooling_small", num_classes=K, num_frames=12).eval()
    with torch.no_grad():
        assert model(_clip(batch=1, frames=12)).shape == (1, K)
        with pytest.raises(ValueError, match="built for 12 frames"):
            model(_clip(batch=1, frames=8))


def test_unknown_pool_is_refused() -> None:
    with pytest.raises(ValueError, match="pool must be one of"):
        create_model("conv_pooling_small", num_classes=K, pool="median")
