"""Make the official-code fixture of tests/models/test_tada.py (run by hand, not by the tests).

Builds a tiny TAda2D with the official code of alibaba-mmai-research/TAdaConv (ResNet3D + Base2DStem +
TAda2DBlock + BaseHead, read from a bare git mirror, never vendored) with random weights, and stores
its state dict in the official layout and its logits on a fixed input:

    python tests/data/tada/make_official_fixture.py MIRROR_GIT_DIR [COMMIT]

Only what the model code needs is replaced: the package ``__init__`` files are skipped (their
imports pull in the whole training framework), ``einops`` is stubbed (imported but unused by these
modules), the config is a namespace holding the keys of ``configs/pool/backbone/tada2d.yaml``, and a
depth "tiny" (one block a stage, still bottlenecks) is added to the official depth table.
Logits are ``head.out`` of the pooled backbone features (the official head adds a softmax in eval).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import types
from pathlib import Path
from types import SimpleNamespace as NS

import torch

FILES = (
    "tadaconv/utils/registry.py",
    "tadaconv/models/utils/params.py",
    "tadaconv/models/utils/init_helper.py",
    "tadaconv/models/base/base_blocks.py",
    "tadaconv/models/base/backbone.py",
    "tadaconv/models/module_zoo/ops/misc.py",
    "tadaconv/models/module_zoo/ops/tadaconv.py",
    "tadaconv/models/module_zoo/branches/s3dg_branch.py",
    "tadaconv/models/module_zoo/branches/tada_branch.py",
)
NUM_FILTERS = [8, 16, 32, 64, 128]  # stem, res2..res5 outputs; inner widths 4, 8, 16, 32
NUM_CLASSES = 10
INPUT = (2, 3, 8, 48, 48)
OUT = Path(__file__).parent


def extract(git_dir: str, commit: str, root: Path) -> None:
    for path in FILES:
        text = subprocess.run(
            ["git", f"--git-dir={git_dir}", "show", f"{commit}:{path}"], check=True, capture_output=True
        ).stdout
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(text)


def stub_packages(root: Path) -> None:
    dirs = {(root / f).parent for f in FILES} | {root / "tadaconv", root / "tadaconv/models"}
    for d in sorted(dirs):
        name = ".".join(d.relative_to(root).parts)
        pkg = types.ModuleType(name)
        pkg.__path__ = [str(d)]  # a package without running its __init__
        sys.modules[name] = pkg
    einops = types.ModuleType("einops")
    einops.rearrange = einops.repeat = None  # imported by base_blocks, unused by ResNet3D
    sys.modules.setdefault("einops", einops)


def config() -> NS:
    branch = NS(NAME="TAda2DBlock", ROUTE_FUNC_K=[3, 3], ROUTE_FUNC_R=4, POOL_K=[3, 1, 1])
    backbone = NS(
        DEPTH="tiny",
        META_ARCH="ResNet3D",
        NUM_FILTERS=NUM_FILTERS,
        NUM_INPUT_CHANNELS=3,
        NUM_OUT_FEATURES=NUM_FILTERS[-1],
        KERNEL_SIZE=[[1, 7, 7]] + [[1, 3, 3]] * 4,
        DOWNSAMPLING=[True] * 5,
        DOWNSAMPLING_TEMPORAL=[False] * 5,
        NUM_STREAMS=1,
        EXPANSION_RATIO=4,
        INITIALIZATION="kaiming",
        STEM=NS(NAME="Base2DStem"),
        BRANCH=branch,
        NONLOCAL=NS(ENABLE=False),
    )
    head = NS(NAME="BaseHead", ACTIVATION="softmax", DROPOUT_RATE=0.5, NUM_CLASSES=NUM_CLASSES)
    return NS(
        VIDEO=NS(BACKBONE=backbone, HEAD=head),
        BN=NS(EPS=1e-5, MOMENTUM=0.1),
        DATA=NS(TRAIN_CROP_SIZE=INPUT[-1], NUM_INPUT_FRAMES=INPUT[2]),
        VISUALIZATION=NS(ENABLE=False),
    )


def randomize(model: torch.nn.Module) -> None:
    """Move every zero-started or trivial tensor off its init, so that the fixture tests all of them."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            elif name.endswith("b_rf.b"):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * 0.2)
            elif name.endswith("b_rf.g") or name.endswith("b_rf.a"):
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
        model.head.out.bias.copy_(torch.randn(NUM_CLASSES, generator=g) * 0.1)
        model.head.out.weight.mul_(10)


def main() -> None:
    git_dir, commit = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "HEAD")
    commit = subprocess.run(
        ["git", f"--git-dir={git_dir}", "rev-parse", commit], check=True, capture_output=True, text=True
    ).stdout.strip()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        extract(git_dir, commit, root)
        stub_packages(root)
        sys.path.insert(0, str(root))
        from tadaconv.models.base import backbone as bb
        from tadaconv.models.base.base_blocks import BaseHead
        from tadaconv.models.module_zoo.branches import tada_branch  # noqa: F401 (registers TAda2DBlock)

        bb._n_conv_resnet["tiny"] = (1, 1, 1, 1)
        cfg = config()
        model = torch.nn.Module()
        model.backbone = bb.ResNet3D(cfg)
        model.head = BaseHead(cfg)
        randomize(model)
        model.eval()
        x = torch.randn(*INPUT, generator=torch.Generator().manual_seed(2)).half()  # stored at half size
        with torch.no_grad():
            features = model.backbone(x.float())  # (2, 128, 8, 2, 2)
            logits = model.head.out(features.mean(dim=(2, 3, 4)))
    torch.save({"model_state": model.state_dict()}, OUT / "official_tiny.pt")
    torch.save({"input": x, "logits": logits, "commit": commit}, OUT / "official_tiny_io.pt")
    print(f"official commit {commit}: features {tuple(features.shape)}, logits {tuple(logits.shape)}")
    print(logits)


if __name__ == "__main__":
    main()
