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
    """Split trainable parameters into a decayed group and an undecayed one (biases, norm scales)."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for _, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if no_decay_norm_bias and p.ndim <= 1 else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def build_optimizer(model: nn.Module, cfg: OptimSection) -> torch.optim.Optimizer:
    """SGD (Nesterov optional) or AdamW over :func:`param_groups`."""
    groups = param_groups(model, weight_decay=cfg.weight_decay, no_decay_norm_bias=cfg.no_decay_norm_bias)
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
