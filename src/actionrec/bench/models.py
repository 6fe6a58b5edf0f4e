"""Model throughput: forward (inference) and forward+backward (training) clips/s and peak memory.

Each registered model runs at its card's default input in several execution modes; where an
installed package has the same architecture (torchvision's R3D-18, MC3-18, R(2+1)D-18) it is timed
in alternation with ours so that the ratio ours / reference comes from one run.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from actionrec.bench.timing import PeakMemory, interleaved
from actionrec.engine.fast import map_tensors, model_to_channels_last, to_channels_last
from actionrec.models.complexity import to_device
from actionrec.models.registry import create_model, example_input, get_card

# mode -> (autocast dtype, channels_last_3d, torch.compile)
MODES: dict[str, tuple[torch.dtype | None, bool, bool]] = {
    "fp32": (None, False, False),
    "bf16": (torch.bfloat16, False, False),
    "channels_last": (None, True, False),
    "bf16+channels_last": (torch.bfloat16, True, False),
    "compile": (None, False, True),
}
DEFAULT_MODES = ("fp32", "bf16", "channels_last", "bf16+channels_last")

REFERENCES: dict[str, Callable[[], nn.Module]] = {}


def _torchvision_reference(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import torchvision.models.video as tvv

        return getattr(tvv, name)(num_classes=400)

    return build


for _name in ("r3d_18", "mc3_18", "r2plus1d_18"):
    REFERENCES[_name] = _torchvision_reference(_name)


@dataclass(frozen=True)
class ModelBenchRow:
    model: str
    mode: str
    pass_: str  # "infer" or "train"
    input: str
    batch: int
    clips_per_s: float
    peak_mb: float
    reference: str | None = None
    reference_clips_per_s: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.reference_clips_per_s:
            return self.clips_per_s / self.reference_clips_per_s
        return None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["pass"] = d.pop("pass_")
        d["ratio_vs_reference"] = self.ratio
        return d


def _prepare(model: nn.Module, example: Any, mode: str, device: torch.device) -> tuple[nn.Module, Any]:
    _, channels_last, compile_ = MODES[mode]
    model = copy.deepcopy(model).to(device)
    example = to_device(example, device)
    if channels_last:  # 5-D weights and clips to channels_last_3d, 4-D ones (2-D models) to channels_last
        model = model_to_channels_last(model)
        example = map_tensors(example, to_channels_last)
    if compile_:
        model = torch.compile(model)  # type: ignore[assignment]
    return model, example


@contextlib.contextmanager
def _autocast(mode: str, device: torch.device) -> Iterator[None]:
    dtype = MODES[mode][0]
    with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
        yield


def _step_fn(
    model: nn.Module, example: Any, mode: str, device: torch.device, train: bool
) -> Callable[[], None]:
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if train:
        model.train()

        def step() -> None:
            model.zero_grad(set_to_none=True)
            with _autocast(mode, device):
                out = model(example)
            out.float().sum().backward()
            sync()

        return step
    model.eval()

    def infer() -> None:
        with torch.inference_mode(), _autocast(mode, device):
            model(example)
        sync()

    return infer


def _describe(example: Any) -> str:
    if isinstance(example, torch.Tensor):
        return "x".join(str(s) for s in example.shape[1:])
    if isinstance(example, dict):
        return "+".join(f"{k}:{_describe(v)}" for k, v in example.items())
    return "+".join(_describe(v) for v in example)


def bench_model(
    name: str,
    *,
    modes: tuple[str, ...] = DEFAULT_MODES,
    passes: tuple[str, ...] = ("infer", "train"),
    batch: int = 1,
    repeats: int = 3,
    device: str = "cpu",
    num_frames: int | None = None,
    size: int | None = None,
) -> list[ModelBenchRow]:
    """Benchmark one registered model (and its reference, if any) in every mode and pass."""
    dev = torch.device(device)
    card = get_card(name)
    example = example_input(card, batch=batch, num_frames=num_frames, size=size)
    ours = create_model(name, num_classes=400)
    ref = REFERENCES[name]() if name in REFERENCES else None
    rows = []
    for pass_ in passes:
        for mode in modes:
            candidates = [_prepare(ours, example, mode, dev)]
            if ref is not None:
                candidates.append(_prepare(ref, example, mode, dev))
            fns = [_step_fn(m, x, mode, dev, pass_ == "train") for m, x in candidates]
            with PeakMemory(dev) as mem:
                fns[0]()
            timings = interleaved(fns, repeats=repeats, warmup=1)
            rows.append(
                ModelBenchRow(
                    model=name,
                    mode=mode,
                    pass_=pass_,
                    input=_describe(example),
                    batch=batch,
                    clips_per_s=timings[0].rate(batch),
                    peak_mb=mem.peak_bytes / 2**20,
                    reference=f"torchvision.{name}" if ref is not None else None,
                    reference_clips_per_s=timings[1].rate(batch) if ref is not None else None,
                )
            )
    return rows


def bench_fast_path(name: str = "r2plus1d_18", *, batch: int = 1, repeats: int = 5) -> dict[str, Any]:
    """The default inference path (``actionrec.fast_inference``) against torchvision's fp32 model.

    Returns clips/s of both, their ratio, and the max abs logit difference on the same random clip.
    """
    from actionrec.engine.fast import fast_inference

    torch.manual_seed(0)
    ref = REFERENCES[name]().eval()
    ours = create_model(name, num_classes=400).eval()
    ours.load_state_dict(ref.state_dict())
    fast = fast_inference(ours)
    x = torch.randn(batch, 3, 16, 112, 112)

    def run_ref() -> torch.Tensor:
        with torch.inference_mode():
            return ref(x)

    def run_fast() -> torch.Tensor:
        with torch.inference_mode():
            return fast(x)

    t_ref, t_fast = interleaved([run_ref, run_fast], repeats=repeats, warmup=1)
    diff = (run_ref() - run_fast().float()).abs().max().item()
    same_top1 = bool((run_ref().argmax(-1) == run_fast().argmax(-1)).all())
    return {
        "model": name,
        "input": f"3x16x112x112, batch {batch}",
        "reference_fp32_clips_per_s": t_ref.rate(batch),
        "fast_clips_per_s": t_fast.rate(batch),
        "ratio": t_ref.median_s / t_fast.median_s,
        "max_abs_logit_diff": diff,
        "same_top1": same_top1,
    }
