"""One training loop for every model: ``train(cfg, out_dir=...) -> TrainResult``.

SGD/AdamW with per-step cosine + linear warm-up, no weight decay on biases and norm parameters,
label smoothing, gradient clipping and accumulation, mixed precision (bf16 autocast on CPU,
bf16/fp16 with a GradScaler on CUDA), channels_last_3d, optional ``torch.compile``, deterministic
mode, DDP under torchrun. Models may return a tensor of logits or a structure with ``logits`` and a
``losses`` dict of auxiliary losses (attribute or key access), which are added to the loss.

Reproducibility: a run resumed from ``last.pt`` replays exactly what an uninterrupted run does, even
after SIGINT/SIGTERM mid-epoch (see :mod:`actionrec.engine.loop_state`).

Output folder: ``last.pt``, ``best.pt`` (best validation top-1), ``config.yaml``, ``metrics.jsonl``,
``curves.png``, ``model.safetensors`` (final weights + JSON card) and ``tensorboard/`` if installed.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from actionrec.data.streams import model_input
from actionrec.engine import checkpoint as ckpt
from actionrec.engine import distributed as D
from actionrec.engine.config import (
    Config,
    build_datasets,
    config_to_dict,
    dataset_report,
    preprocessing_card,
    save_config,
)
from actionrec.engine.fast import model_to_channels_last, to_device
from actionrec.engine.logging import MetricsLogger, Throughput, plot_curves, progress
from actionrec.engine.loop_state import Progress, StopFlag, make_loader, seed_everything, threading_main
from actionrec.engine.optim import build_optimizer, build_scheduler
from actionrec.engine.precision import autocast_dtype, cpu_label
from actionrec.engine.tasks import EpochMeter, Task, batch_size, higher_is_better, validate
from actionrec.errors import ActionrecError, ConfigError
from actionrec.layers.cpu_bf16 import guard_cpu_bf16_conv3d
from actionrec.weights import save_weights

__all__ = ["TrainResult", "seed_everything", "threading_main", "train"]  # the last two: loop_state


@dataclass
class TrainResult:
    """What a finished (or interrupted) run produced. Paths are None on ranks other than 0."""

    out_dir: Path
    last_checkpoint: Path | None
    best_checkpoint: Path | None
    weights: Path | None  # model.safetensors: final weights + card; None when interrupted
    epochs_completed: int
    global_step: int
    best_top1: float | None
    final_top1: float | None
    interrupted: bool = False
    classes: list[str] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)


def _precision(cfg: Config, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``train.precision`` on ``device`` (see :mod:`actionrec.engine.precision`)."""
    if cfg.train.precision == "fp16" and device.type != "cuda":
        raise ConfigError("train.precision: fp16 needs CUDA; use bf16 on CPU")
    return autocast_dtype(cfg.train.precision, device)


def _compute_threads(cfg: Config, device: torch.device) -> int:
    """Intra-op threads for training: ``train.threads``, else on CPU the cores the workers leave free."""
    if cfg.train.threads:
        return cfg.train.threads
    if device.type != "cpu" or "OMP_NUM_THREADS" in os.environ:
        return torch.get_num_threads()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores - cfg.train.num_workers)


# ---------------------------------------------------------------- the loop


def train(
    cfg: Config,
    *,
    out_dir: str | Path,
    resume: bool = False,
    model: nn.Module | None = None,
    train_set: Dataset | None = None,
    val_set: Dataset | None = None,
) -> TrainResult:
    """Train ``cfg.model`` on ``cfg.data`` and write checkpoints, metrics and weights to ``out_dir``.

    ``resume=True`` continues from ``out_dir/last.pt`` exactly where it stopped. ``model``,
    ``train_set`` and ``val_set`` replace what the config would build (datasets yield dicts with the
    model's input streams, see :func:`~actionrec.data.streams.model_input`, and ``label``;
    ``val_set=None`` with a given ``train_set`` disables validation).
    Under torchrun every rank calls this; rank 0 writes the files.
    """
    info = D.init_distributed(cfg.train.device)
    created_group = info.enabled
    try:
        return _Trainer(cfg, Path(out_dir), info, model, train_set, val_set).run(resume)
    finally:
        if created_group:
            D.cleanup()


class _Trainer:
    def __init__(
        self,
        cfg: Config,
        out: Path,
        info: D.DistInfo,
        model: nn.Module | None,
        train_set: Dataset | None,
        val_set: Dataset | None,
    ) -> None:
        self.cfg, self.out, self.info = cfg, out, info
        if cfg.train.device == "cuda" and info.device.type != "cuda":
            raise ConfigError("train.device: 'cuda' requested but CUDA is not available")
        try:
            self.batch = D.per_rank_batch(cfg.train.batch_size, info.world_size)
        except ValueError as e:
            raise ConfigError(f"train.batch_size: {e}") from None
        self.dtype = _precision(cfg, info.device)
        self.task = Task(cfg.task, label_smoothing=cfg.optim.label_smoothing)
        self._set_determinism()
        seed_everything(D.mix_seed(cfg.train.seed, info.rank))
        self.card = getattr(model, "card", None) if model is not None else self._card()
        if train_set is None:
            train_set, val_set = build_datasets(cfg, self.card)
        self.train_set, self.val_set = train_set, val_set
        self.classes = [str(c) for c in getattr(train_set, "classes", [])]
        num_classes = cfg.model.num_classes or len(self.classes)
        if not num_classes:
            raise ConfigError("model.num_classes: not set and the dataset has no classes")
        self.num_classes = num_classes
        self.model = self._prepare(model if model is not None else self._build_model(num_classes))
        self.loader = make_loader(train_set, batch=self.batch, info=info, cfg=cfg, train=True)
        self.val_loader = (
            make_loader(val_set, batch=self.batch, info=info, cfg=cfg, train=False)
            if val_set is not None and cfg.train.eval_every
            else None
        )
        self.n_batches = len(self.loader)
        if cfg.train.max_steps_per_epoch:
            self.n_batches = min(self.n_batches, cfg.train.max_steps_per_epoch * cfg.optim.accumulate)
        if self.n_batches == 0:
            raise ConfigError("train.batch_size: the training set yields no batch")
        steps = -(-self.n_batches // cfg.optim.accumulate)
        self.optimizer = build_optimizer(ckpt.unwrap(self.model), cfg.optim)  # names as the model gives them
        self.scheduler = build_scheduler(
            self.optimizer, cfg.optim, steps_per_epoch=steps, epochs=cfg.train.epochs
        )
        self.scaler = torch.amp.GradScaler(info.device.type, enabled=self.dtype == torch.float16)

    def _card(self) -> Any:
        from actionrec.models.registry import get_card

        return get_card(self.cfg.model.name)

    def _set_determinism(self) -> None:
        self._prev_det = (
            torch.are_deterministic_algorithms_enabled(),
            torch.is_deterministic_algorithms_warn_only_enabled(),
        )
        if self.cfg.train.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
        else:
            torch.backends.cudnn.benchmark = self.info.device.type == "cuda"

    def _build_model(self, num_classes: int) -> nn.Module:
        from actionrec.models.registry import create_model

        m = self.cfg.model
        kwargs = dict(m.overrides)
        if m.dropout is not None:
            kwargs["dropout"] = m.dropout
        first = m.pretrained_classes if m.weights and m.pretrained_classes else num_classes
        try:
            model = create_model(m.name, num_classes=first, weights=m.weights, strict=m.strict, **kwargs)
        except TypeError as e:
            raise ConfigError(f"model.overrides: {m.name} does not accept them ({e})") from None
        if first != num_classes:
            model.reset_classifier(num_classes)  # fine-tuning: a fresh head for the new classes
        return model

    def _prepare(self, model: nn.Module) -> nn.Module:
        model = model.to(self.info.device)
        if self.info.device.type == "cpu" and self.dtype == torch.bfloat16:
            guard_cpu_bf16_conv3d(model)
        if self.cfg.train.channels_last:
            model_to_channels_last(model)
        if self.info.enabled:
            ids = [self.info.local_rank] if self.info.device.type == "cuda" else None
            model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        if self.cfg.train.compile:
            model = torch.compile(model)
        return model

    # -------------------------------------------------------------- checkpoints

    def _state_dict(self, p: Progress) -> dict[str, Any]:
        return {
            "model": ckpt.unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            **p.state(),
            "rng": D.gather_objects(ckpt.rng_state()),
            "world_size": self.info.world_size,
            "classes": self.classes,
            "config": config_to_dict(self.cfg),
            "preprocessing": preprocessing_card(self.cfg, self.card) if self.card is not None else None,
            "builder_kwargs": dict(getattr(ckpt.unwrap(self.model), "builder_kwargs", {})),
        }

    def _save(self, p: Progress, *names: str) -> None:
        state = self._state_dict(p)  # every rank: gathering the RNG states is collective
        D.barrier()
        if self.info.is_main:
            for name in names:
                ckpt.save_checkpoint(self.out / name, state)
        D.barrier()

    def _restore(self) -> Progress:
        s = ckpt.load_checkpoint(self.out / "last.pt")
        ckpt.unwrap(self.model).load_state_dict(s["model"])
        self.optimizer.load_state_dict(s["optimizer"])
        self.scheduler.load_state_dict(s["scheduler"])
        if s["scaler"]:
            self.scaler.load_state_dict(s["scaler"])
        return Progress.from_state(s, same_world=s["world_size"] == self.info.world_size)

    # -------------------------------------------------------------- one epoch

    def _loss(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor], float, int]:
        """The weighted loss, its terms, the correct predictions and the batch size."""
        x = to_device(model_input(batch), self.info.device, self.cfg.train.channels_last)
        y = batch.get("label")
        y = y.to(self.info.device, non_blocking=True) if y is not None and not self.task.pretrain else None
        with torch.autocast(
            self.info.device.type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None
        ):
            out = self.model(x)
        terms, logits = self.task.terms(out, y)
        correct = (logits.detach().argmax(1) == y).sum().item() if logits is not None and y is not None else 0
        return self.task.total(terms), terms, float(correct), batch_size(x)

    def _optimizer_step(self) -> None:
        if self.cfg.optim.grad_clip:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()

    def _stop_requested(self, flag: StopFlag) -> bool:
        raised = 1.0 if flag.signum is not None else 0.0
        return D.all_reduce_sum([raised], self.info.device)[0] > 0 if self.info.enabled else raised > 0

    def _start_epoch(self, epoch: int, p: Progress) -> Any:
        seed_everything(D.mix_seed(self.cfg.train.seed, epoch, self.info.rank))
        self.loader.sampler.set_epoch(epoch)  # type: ignore[attr-defined]
        self.loader.sampler.set_start(p.batch_in_epoch * self.batch)  # type: ignore[attr-defined]
        self.model.train()
        it = iter(self.loader)  # a mid-epoch resume starts after the batches trained on
        if p.batch_in_epoch and p.rng:
            first = next(it)  # the iterator draws its workers' base seed on its first batch: before
            ckpt.set_rng_state(p.rng[self.info.rank])  # the RNGs go back to where training stopped
            return itertools.chain([first], it)
        return it

    def _train_epoch(self, epoch: int, p: Progress, flag: StopFlag) -> bool:
        """Train one epoch (or its rest); False when stopped by a signal (checkpoint already saved)."""
        it, acc = self._start_epoch(epoch, p), self.cfg.optim.accumulate
        bar = progress(
            range(p.batch_in_epoch, self.n_batches),
            total=self.n_batches,
            initial=p.batch_in_epoch,
            desc=f"epoch {epoch + 1}/{self.cfg.train.epochs}",
            enabled=self.info.is_main,
        )
        speed = Throughput()
        for b in bar:
            batch = next(it)
            group_start = b - b % acc
            group_size = min(acc, self.n_batches - group_start)
            last = b + 1 == group_start + group_size
            sync = contextlib.nullcontext() if last or not self.info.enabled else self.model.no_sync()
            with sync:
                loss, terms, correct, n = self._loss(batch)
                self.scaler.scale(loss / group_size).backward()
            meter = EpochMeter(p.sums)
            meter.add(loss.item(), {k: v.item() for k, v in terms.items()}, correct=correct, count=n)
            p.sums = meter.sums
            rate = speed.update(n * self.info.world_size)
            if not last:
                continue
            self._optimizer_step()
            p.global_step += 1
            p.batch_in_epoch = b + 1
            if p.global_step % self.cfg.train.log_every == 0 or b + 1 == self.n_batches:
                bar.set_postfix(
                    loss=f"{loss.item():.3f}",
                    lr=f"{self.scheduler.get_last_lr()[0]:.2e}",
                    clips_s=f"{rate:.1f}",
                )
            if self._stop_requested(flag) and b + 1 < self.n_batches:
                bar.close()
                self._save(p, "last.pt")
                return False
        bar.close()
        return True

    # -------------------------------------------------------------- the run

    def _end_epoch(self, epoch: int, p: Progress, logger: MetricsLogger, started: float) -> dict[str, Any]:
        sums = EpochMeter(p.sums).reduced(self.info.device)
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "global_step": p.global_step,
            **EpochMeter.record("train", sums, accuracy=not self.task.pretrain),
            "lr": self.scheduler.get_last_lr()[0],
            "time_s": round(time.time() - started, 3),
        }
        record["train_clips_per_s"] = sums.get("count", 0.0) / max(record["time_s"], 1e-9)
        every = self.cfg.train.eval_every
        if self.val_loader is not None and ((epoch + 1) % every == 0 or epoch + 1 == self.cfg.train.epochs):
            record.update(
                validate(
                    self.model,
                    self.val_loader,
                    task=self.task,
                    device=self.info.device,
                    dtype=self.dtype,
                    channels_last=self.cfg.train.channels_last,
                    show=self.info.is_main,
                )
            )
        p.epoch, p.batch_in_epoch, p.sums = epoch + 1, 0, {}
        if "val_top1" in record and (p.best_top1 is None or record["val_top1"] > p.best_top1):
            p.best_top1 = record["val_top1"]
        improved = self._improves(record, p)
        logger.log(record, step=p.global_step)
        self._save(p, "last.pt", *(("best.pt",) if improved else ()))
        if self.info.is_main:
            shown = "  ".join(f"{k} {v:.4g}" for k, v in record.items() if k not in ("epoch", "global_step"))
            print(f"epoch {epoch + 1}/{self.cfg.train.epochs}  {shown}", file=sys.stderr)
            for ds in (self.train_set, self.val_set):
                report = dataset_report(ds) if ds is not None else None
                if report:
                    print(report, file=sys.stderr)
        return record

    def _improves(self, record: dict[str, Any], p: Progress) -> bool:
        """Whether ``record`` beats the best value of ``task.best_metric`` so far (then it is kept)."""
        value = record.get(self.task.best_metric)
        if value is None:
            return False
        better = higher_is_better(self.task.best_metric)
        if p.best_value is None or (value > p.best_value if better else value < p.best_value):
            p.best_value = value
            return True
        return False

    def _finish(self, p: Progress, history: list[dict[str, Any]], interrupted: bool) -> TrainResult:
        main = self.info.is_main
        weights = None
        if main and not interrupted:
            weights = save_weights(
                ckpt.unwrap(self.model),
                self.out / "model.safetensors",
                labels=self.classes or None,
                extra=self._card_extra(),
            )
            plot_curves(self.out / "metrics.jsonl", self.out / "curves.png")
        D.barrier()
        finals = [r["val_top1"] for r in history if "val_top1" in r]
        best = self.out / "best.pt"
        return TrainResult(
            out_dir=self.out,
            last_checkpoint=self.out / "last.pt" if main else None,
            best_checkpoint=best if main and best.exists() else None,
            weights=weights,
            epochs_completed=p.epoch,
            global_step=p.global_step,
            best_top1=p.best_top1,
            final_top1=finals[-1] if finals else None,
            interrupted=interrupted,
            classes=self.classes,
            history=history,
        )

    def _card_extra(self) -> dict[str, Any]:
        """What the weights card adds to :func:`save_weights`'s: the preprocessing used, the config."""
        name = getattr(ckpt.unwrap(self.model), "model_name", self.cfg.model.name)
        extra: dict[str, Any] = {
            "model": name,
            "num_classes": self.num_classes,
            "config": config_to_dict(self.cfg),
        }
        if self.card is not None:
            extra["preprocessing"] = preprocessing_card(self.cfg, self.card)
        return extra

    def run(self, resume: bool) -> TrainResult:
        threads = torch.get_num_threads()
        torch.set_num_threads(_compute_threads(self.cfg, self.info.device))
        try:
            return self._run(resume)
        finally:
            torch.set_num_threads(threads)
            torch.use_deterministic_algorithms(self._prev_det[0], warn_only=self._prev_det[1])

    def _run(self, resume: bool) -> TrainResult:
        if not resume and (self.out / "last.pt").exists():
            raise ActionrecError(
                f"{self.out}: already holds a run (last.pt); resume it or use another folder"
            )
        if self.info.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            precision = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]
            where = cpu_label() if self.info.device.type == "cpu" else str(self.info.device)
            print(f"training on {where}: {precision}, {torch.get_num_threads()} threads", file=sys.stderr)
            ckpt.remove_stale_temp_files(self.out)
            save_config(self.cfg, self.out / "config.yaml")
        if resume and not (self.out / "last.pt").exists():
            if self.info.is_main:
                print(f"no checkpoint in {self.out} yet: starting from the beginning", file=sys.stderr)
            resume = False
        p = self._restore() if resume else Progress()
        logger = MetricsLogger(self.out, enabled=self.info.is_main)
        if resume:
            logger.truncate_after(p.epoch)
        elif self.info.is_main:
            logger.path.unlink(missing_ok=True)
        history: list[dict[str, Any]] = []
        try:
            with StopFlag() as flag:
                for epoch in range(p.epoch, self.cfg.train.epochs):
                    started = time.time()
                    if not self._train_epoch(epoch, p, flag):
                        return self._interrupted(p, flag, history)
                    history.append(self._end_epoch(epoch, p, logger, started))
                    if self._stop_requested(flag) and epoch + 1 < self.cfg.train.epochs:
                        return self._interrupted(p, flag, history)
        finally:
            logger.close()
        return self._finish(p, history, interrupted=False)

    def _interrupted(self, p: Progress, flag: StopFlag, history: list[dict[str, Any]]) -> TrainResult:
        if self.info.is_main:
            name = signal.Signals(flag.signum).name if flag.signum else "a signal on another rank"
            print(
                f"stopped by {name} at epoch {p.epoch + 1}, batch {p.batch_in_epoch}; checkpoint saved to "
                f"{self.out / 'last.pt'}; continue with --resume",
                file=sys.stderr,
            )
        return self._finish(p, history, interrupted=True)
