"""Classifier head: feature maps (B, C, T, H, W), tokens (B, N, D) by CLS or mean, pooled (B, C)."""

from __future__ import annotations

import pytest
import torch

from actionrec.layers.head import ClassifierHead


def test_feature_map_is_averaged_over_time_and_space() -> None:
    torch.manual_seed(0)
    head = ClassifierHead(8, 5).eval()
    x = torch.randn(2, 8, 3, 4, 4)
    pooled = x.mean(dim=(2, 3, 4))
    torch.testing.assert_close(head(x, pre_logits=True), pooled)
    torch.testing.assert_close(head(x), head.fc(pooled))
    assert head(x).shape == (2, 5)


def test_pooled_features_pass_straight_through() -> None:
    head = ClassifierHead(8, 5).eval()
    x = torch.randn(2, 8)
    assert torch.equal(head(x, pre_logits=True), x)
    torch.testing.assert_close(head(x), head.fc(x))


@pytest.mark.parametrize(("token_pool", "index"), [("cls", 0), ("mean", None)])
def test_tokens_are_pooled_by_cls_or_mean(token_pool: str, index: int | None) -> None:
    torch.manual_seed(0)
    head = ClassifierHead(16, 4, token_pool=token_pool).eval()
    tokens = torch.randn(3, 7, 16)  # (B, N, D): N = 1 CLS + 6 patch tokens
    pooled = tokens.mean(1) if index is None else tokens[:, index]
    torch.testing.assert_close(head(tokens, pre_logits=True), pooled)
    torch.testing.assert_close(head(tokens), head.fc(pooled))
    assert head(tokens).shape == (3, 4)


def test_default_token_pool_is_the_mean() -> None:
    tokens = torch.randn(2, 5, 8)
    torch.testing.assert_close(ClassifierHead(8, 3)(tokens, pre_logits=True), tokens.mean(1))


def test_unknown_token_pool_is_refused() -> None:
    with pytest.raises(ValueError, match="token_pool"):
        ClassifierHead(8, 3, token_pool="max")  # type: ignore[arg-type]


def test_dropout_only_before_the_classifier() -> None:
    torch.manual_seed(0)
    head = ClassifierHead(16, 4, dropout=0.9, token_pool="cls").train()
    tokens = torch.randn(2, 3, 16)
    assert torch.equal(head(tokens, pre_logits=True), tokens[:, 0])
    assert not torch.allclose(head(tokens), head.fc(tokens[:, 0]))


def test_reset_keeps_the_pooling() -> None:
    head = ClassifierHead(8, 5, token_pool="cls")
    head.reset(0)
    tokens = torch.randn(2, 4, 8)
    assert torch.equal(head(tokens), tokens[:, 0])
    head.reset(3)
    assert head(tokens).shape == (2, 3)
