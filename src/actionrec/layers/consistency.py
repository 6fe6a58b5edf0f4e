"""Clip-consistency loss: the predictions of a clip's temporal parts pulled together.

A clip of one action should be recognised as that action from any part of it. The final feature map
(B, C, T, H, W) is cut into ``parts`` equal chunks along time; each chunk is pooled and classified by
the model's own head (the same linear layer that scores the whole clip), and the loss is the
Jensen-Shannon divergence of the parts' class distributions: the mean over parts of
KL(p_i || m), m the mean of the p_i. It is zero exactly when every part predicts the same
distribution, symmetric in the parts, bounded by log(parts), and needs no labels, so it also works
as a label-free term. It is returned beside the logits as the named term ``consistency`` and weighted
by ``task.loss_weights.consistency`` (see :mod:`actionrec.engine.tasks`).

Our construction for the "loss that keeps different parts of a clip consistent" of the dynamic
convolution issue; not part of TAdaConv (Huang et al. 2022), which trains with cross-entropy alone.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import torch


def temporal_parts(features: torch.Tensor, parts: int) -> list[torch.Tensor]:
    """(B, C, T, H, W) -> ``parts`` chunks (B, C, T_i, H, W) of (nearly) equal length, in time order."""
    t = features.shape[2]
    if not 2 <= parts <= t:
        raise ValueError(f"clip consistency needs 2 <= parts <= T = {t}, got parts={parts}")
    bounds = [round(i * t / parts) for i in range(parts + 1)]
    return [features[:, :, a:b] for a, b in itertools.pairwise(bounds)]


def js_divergence(logits: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence of P distributions given as logits (P, B, K), averaged over B."""
    logp = torch.log_softmax(logits.float(), dim=-1)  # (P, B, K)
    log_mean = torch.logsumexp(logp, dim=0) - math.log(logp.shape[0])  # log of the mean distribution
    kl = (logp.exp() * (logp - log_mean)).sum(-1)  # (P, B): KL(p_i || m)
    return kl.mean(0).mean()


def clip_consistency(
    features: torch.Tensor, classify: Callable[[torch.Tensor], torch.Tensor], *, parts: int = 2
) -> torch.Tensor:
    """The loss for a feature map (B, C, T, H, W); ``classify`` maps a (B, C, T_i, H, W) chunk to logits."""
    logits = torch.stack([classify(chunk) for chunk in temporal_parts(features, parts)])  # (P, B, K)
    return js_divergence(logits)
