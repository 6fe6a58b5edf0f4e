"""Optimiser and learning-rate schedule for the training loop.

* Weight decay applies to weight matrices and convolution kernels only: biases and normalisation
  parameters (every tensor with ``ndim <= 1``) are put in a group without decay, as in
  "Bag of Tricks for Image Classification with Convolutional Neural Networks" (He et al., 2018,
  arXiv:1812.01187, section 3.1 "No bias decay").
* The schedule is stepped once per optimiser step: a linear warm-up over ``warmup_epochs`` from
  ``warmup_factor * lr`` to ``lr`` ("Accurate, Large Minibatch SGD", Goyal et al., 2017,
  arXiv:1706.02677, section 2.2), then a half-period cosine to ``min_lr`` ("SGDR", Loshchilov &
  Hutter, 2016, arXiv:1608.03983, eq. 5 without restarts), a step decay at ``milestones`` or a
  constant rate.
* A model may name further parameters to keep out of weight decay with ``model.no_weight_decay()``
  (a transformer's position embeddings and CLS token, as timm's and the official TimeSformer code do).
* A model may scale the rate of some parameters: ``model.lr_multipliers()`` maps parameter names to
  factors (TSN's 5x / 10x on the flow network's first convolution, from its released code); each
  factor gets its own groups, so the schedule scales every group alike.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

if TYPE_CHECKING:
    from actionrec.engine.config import OptimSection


def param_groups(model: nn.Module, *, weight_decay: float, no_decay_norm_bias: bool = True) -> list[dict]:
    """Trainable parameters in groups by (decay, lr factor): weight decay only on tensors with
    ``ndim > 1`` (unless ``no_decay_norm_bias`` is off) and not named by ``model.no_weight_decay()``;
    ``lr_scale`` from ``model.lr_multipliers()``."""
    hook = getattr(model, "lr_multipliers", None)
    scales: dict[str, float] = dict(hook()) if callable(hook) else {}
    unknown = set(scales) - {name for name, _ in model.named_parameters()}
    if unknown:
        raise ValueError(f"lr_multipliers names unknown parameters: {sorted(unknown)[:4]}")
    skip = getattr(model, "no_weight_decay", None)
    no_decay: set[str] = set(skip()) if callable(skip) else set()
    buckets: dict[tuple[bool, float], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        decay = not (no_decay_norm_bias and p.ndim <= 1) and name not in no_decay
        buckets.setdefault((decay, float(scales.get(name, 1.0))), []).append(p)
    buckets.setdefault((True, 1.0), [])  # the plain decayed group always exists, first
    order = sorted(buckets, key=lambda k: (k[1] != 1.0, not k[0], k[1]))
    return [
        {"params": buckets[k], "weight_decay": weight_decay if k[0] else 0.0, "lr_scale": k[1]} for k in order
    ]


def build_optimizer(model: nn.Module, cfg: OptimSection) -> torch.optim.Optimizer:
    """SGD (Nesterov optional) or AdamW over :func:`param_groups`, each group at ``lr * lr_scale``."""
    groups = param_groups(model, weight_decay=cfg.weight_decay, no_decay_norm_bias=cfg.no_decay_norm_bias)
    for g in groups:
        g["lr"] = cfg.lr * g["lr_scale"]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0
        )
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))


class LrFactor:
    """Multiplier of the base learning rate at a given optimiser step (picklable, plain numbers only)."""

    def __init__(self, cfg: OptimSection, *, steps_per_epoch: int, epochs: int) -> None:
        self.schedule = cfg.schedule
        self.warmup_steps = round(cfg.warmup_epochs * steps_per_epoch)
        self.warmup_factor = cfg.warmup_factor
        self.total_steps = max(1, epochs * steps_per_epoch)
        self.min_factor = cfg.min_lr / cfg.lr if cfg.lr > 0 else 0.0
        self.milestones = [m * steps_per_epoch for m in cfg.milestones]
        self.gamma = cfg.gamma

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.warmup_factor + (1.0 - self.warmup_factor) * step / self.warmup_steps
        if self.schedule == "cosine":
            span = max(1, self.total_steps - self.warmup_steps)
            progress = min(1.0, (step - self.warmup_steps) / span)
            return self.min_factor + (1.0 - self.min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))
        if self.schedule == "step":
            return self.gamma ** sum(step >= m for m in self.milestones)
        return 1.0


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: OptimSection, *, steps_per_epoch: int, epochs: int
) -> LambdaLR:
    """A per-step :class:`LambdaLR` following :class:`LrFactor`; ``.step()`` after each optimiser step."""
    return LambdaLR(optimizer, LrFactor(cfg, steps_per_epoch=steps_per_epoch, epochs=epochs))
