"""What a training run optimises and how it is scored: the task, its named loss terms, its metric.

A model returns logits, or a mapping / object with ``logits`` and ``losses`` (named auxiliary loss
terms it computed itself, e.g. a reconstruction error); :func:`split_output` reads all three forms.

* ``classify``: cross-entropy on ``label`` (with label smoothing); any auxiliary term the model
  returns is added with its weight (1 unless the recipe says otherwise).
* ``multitask``: the same sum, but every term named in ``task.loss_weights`` must be returned by the
  model, so a misspelled or missing term is an error instead of a silent zero.
* ``pretrain``: label-free; the loss is the weighted sum of the model's own terms, no label is read
  and no accuracy is computed.

Every term is logged on its own (``train_loss_<name>``, ``val_loss_<name>``; the cross-entropy is
``cls``). The checkpoint kept as ``best.pt`` is chosen by ``task.best_metric``: larger is better
for accuracies (names ending in ``top1`` / ``top5`` / ``acc``), smaller for everything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from actionrec.data.streams import model_input
from actionrec.engine import distributed as D
from actionrec.engine.config import TaskSection
from actionrec.engine.fast import map_tensors, to_device
from actionrec.engine.logging import progress
from actionrec.errors import ConfigError

TASKS = ("classify", "multitask", "pretrain")  # keep in step with TaskSection.name
CLS = "cls"


def split_output(out: Any) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
    """(logits or None, auxiliary losses) from a tensor, a mapping or an object with ``logits``/``losses``."""
    if isinstance(out, torch.Tensor):
        return out, {}
    if isinstance(out, Mapping):
        return out.get("logits"), dict(out.get("losses") or {})
    return getattr(out, "logits", None), dict(getattr(out, "losses", None) or {})


def _classification_loss(
    output: Any, logits: torch.Tensor, labels: torch.Tensor, smoothing: float
) -> torch.Tensor:
    """Cross-entropy of the logits; a model that predicts at every step of a sequence (an LSTM over
    frames) may return ``step_logits`` (B, S, K) and ``step_weights`` (S,) beside its ``logits``:
    the loss is then the weighted mean of the per-step cross-entropies (Ng et al. 2015, §3.2)."""
    steps = output.get("step_logits") if isinstance(output, Mapping) else None
    if steps is None:
        return F.cross_entropy(logits.float(), labels, label_smoothing=smoothing)
    b, s, k = steps.shape
    weights = output.get("step_weights")
    weights = torch.ones(s, device=steps.device) if weights is None else weights.to(steps.device).float()
    per_step = F.cross_entropy(
        steps.float().reshape(b * s, k),
        labels.repeat_interleave(s),
        label_smoothing=smoothing,
        reduction="none",
    ).view(b, s)  # (B*S,) -> (B, S)
    return (per_step * weights).sum(1).mean() / weights.sum()


def higher_is_better(metric: str) -> bool:
    return metric.endswith(("top1", "top5", "acc", "accuracy"))


class Task:
    """Turns a model output and a batch into named loss terms and their weighted total."""

    def __init__(self, section: TaskSection, *, label_smoothing: float = 0.0) -> None:
        if section.name not in TASKS:
            raise ConfigError(f"task.name: {section.name!r} is not one of {', '.join(TASKS)}")
        if section.name == "pretrain" and CLS in section.loss_weights:
            raise ConfigError("task.loss_weights: pretraining has no classification term 'cls'")
        self.name, self.weights = section.name, dict(section.loss_weights)
        self.label_smoothing = label_smoothing
        self.best_metric = section.best_metric or ("val_loss" if self.pretrain else "val_top1")

    @property
    def pretrain(self) -> bool:
        return self.name == "pretrain"

    def terms(
        self, output: Any, labels: torch.Tensor | None, *, smoothing: float | None = None
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        """Named (unweighted, float32) loss terms and the logits (None when the model gives none)."""
        logits, aux = split_output(output)
        terms: dict[str, torch.Tensor] = {}
        if not self.pretrain:
            if logits is None or labels is None:
                raise ConfigError(f"task {self.name}: the model must return logits and the data labels")
            ls = self.label_smoothing if smoothing is None else smoothing
            terms[CLS] = _classification_loss(output, logits, labels, ls)
        terms.update({k: v.float() for k, v in aux.items()})
        missing = [k for k in self.weights if k not in terms] if self.name != "classify" else []
        if missing or not terms:
            raise ConfigError(
                f"task {self.name}: the model returned no loss term {', '.join(missing) or '(none at all)'}"
            )
        return terms, logits

    def total(self, terms: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The weighted sum that is back-propagated."""
        weighted = [self.weights.get(k, 1.0) * v for k, v in terms.items()]  # never empty: see terms()
        return torch.stack(weighted).sum() if len(weighted) > 1 else weighted[0]


class EpochMeter:
    """Sums of the weighted loss, every term, correct predictions and clips over one epoch."""

    def __init__(self, state: Mapping[str, float] | None = None) -> None:
        self.sums: dict[str, float] = dict(state or {})

    def add(self, total: float, terms: Mapping[str, float], *, correct: float, count: int) -> None:
        for key, value in {"loss": total * count, "correct": correct, "count": float(count)}.items():
            self.sums[key] = self.sums.get(key, 0.0) + value
        for name, value in terms.items():
            self.sums[f"loss_{name}"] = self.sums.get(f"loss_{name}", 0.0) + value * count

    def reduced(self, device: torch.device) -> dict[str, float]:
        """The sums over every rank (the same keys on each: the same model gives the same terms)."""
        keys = sorted(self.sums)
        return dict(zip(keys, D.all_reduce_sum([self.sums[k] for k in keys], device)))

    @staticmethod
    def record(prefix: str, totals: Mapping[str, float], *, accuracy: bool) -> dict[str, float]:
        """``{prefix}_loss``, ``{prefix}_loss_<term>``, ``{prefix}_top1``, ``{prefix}_clips`` from sums."""
        count = totals.get("count", 0.0)
        out = {f"{prefix}_{k}": v / max(1.0, count) for k, v in totals.items() if k.startswith("loss")}
        if accuracy:
            out[f"{prefix}_top1"] = 100.0 * totals.get("correct", 0.0) / max(1.0, count)
        return {**out, f"{prefix}_clips": count}


def _views(x: Any) -> int:
    """Views per sample of a model input: V of (B, V, C, T, H, W) clips, else 1."""
    first = x if isinstance(x, torch.Tensor) else next(iter(x.values())) if isinstance(x, dict) else x[0]
    return first.shape[1] if first.ndim == 6 else 1


def batch_size(x: Any) -> int:
    if isinstance(x, torch.Tensor):
        return x.shape[0]
    first = next(iter(x.values())) if isinstance(x, dict) else x[0]
    return batch_size(first)


@torch.no_grad()
def validate(
    model: nn.Module,
    loader: DataLoader,
    *,
    task: Task,
    device: torch.device,
    dtype: torch.dtype | None = None,
    channels_last: bool = False,
    show: bool = False,
) -> dict[str, float]:
    """Loss terms and top-1 (%) of one view per video, summed over all ranks.

    Samples with several views, (B, V, C, T, H, W), are scored by averaging the views' logits.
    """
    model.eval()
    meter = EpochMeter()
    for batch in progress(loader, total=len(loader), desc="val", enabled=show):
        x = to_device(model_input(batch), device, channels_last)
        y = batch["label"].to(device) if "label" in batch and not task.pretrain else None
        n = batch_size(x)
        views = _views(x)
        if views > 1:
            x = map_tensors(x, lambda t: t.flatten(0, 1))  # (B, V, C, T, H, W) -> (B*V, C, T, H, W)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            logits, aux = split_output(model(x))
        if logits is not None:
            logits = logits.float().view(n, views, -1).mean(1)  # (B*V, K) -> (B, K)
        terms, _ = task.terms({"logits": logits, "losses": aux}, y, smoothing=0.0)
        correct = (logits.argmax(1) == y).sum().item() if logits is not None and y is not None else 0.0
        meter.add(task.total(terms).item(), {k: v.item() for k, v in terms.items()}, correct=correct, count=n)
    return meter.record("val", meter.reduced(device), accuracy=not task.pretrain)
