"""TimeSformer: equivalence with the official code (stored fixtures), image-ViT initialisation, resizing
of the position embeddings, every scheme's training signal and its published size.

The fixtures in ``tests/data/timesformer/`` were made by the official facebookresearch/TimeSformer code
(``make_official_fixture.py`` there): random-weight checkpoints in the released ``.pyth`` layout and the
official model's logits on fixed clips.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from actionrec.errors import WeightsError
from actionrec.models import create_model
from actionrec.models.complexity import count_macs, count_params
from actionrec.models.timesformer import SCHEMES
from actionrec.weights import load_weights

FIXTURES = Path(__file__).parent.parent / "data" / "timesformer"
# the fixtures' network: ViT of width 48, 2 blocks, 3 heads, 4 frames of 32², 5 classes
TINY = {"num_classes": 5, "img_size": 32, "num_frames": 4, "embed_dim": 48, "depth": 2, "num_heads": 3}


def _tiny(scheme: str, **kw: object) -> torch.nn.Module:
    return create_model(f"timesformer_tiny_{scheme}", **{**TINY, **kw}).eval()


@pytest.mark.parametrize("scheme", ["divided", "joint", "space"])
def test_official_checkpoints_give_the_official_logits(scheme: str) -> None:
    model = _tiny(scheme)
    result = load_weights(model, FIXTURES / f"official_{scheme}.pyth")
    assert not (result.missing or result.unexpected or result.skipped)
    io = torch.load(FIXTURES / f"official_{scheme}_io.pt", weights_only=True)
    with torch.no_grad():
        logits = model(io["input"])  # (2, 3, 4, 32, 32)
    assert (logits - io["logits"]).abs().max() < 1e-4


def test_time_embedding_follows_the_clip_length_as_the_official_code_does() -> None:
    io = torch.load(FIXTURES / "official_divided_io_8frames.pt", weights_only=True)  # 4-frame model, 8 frames
    at_run_time = _tiny("divided")
    load_weights(at_run_time, FIXTURES / "official_divided.pyth")
    at_load_time = _tiny("divided", num_frames=8)  # the checkpoint's 4 time embeddings resized when loaded
    load_weights(at_load_time, FIXTURES / "official_divided.pyth")
    assert at_load_time.time_embed.shape == (1, 8, 48)
    with torch.no_grad():
        for model in (at_run_time, at_load_time):
            assert (model(io["input"]) - io["logits"]).abs().max() < 1e-4


def _image_vit(tmp_path: Path, *, classes: int = 1000) -> Path:
    """A timm-layout image ViT state dict (random, 1000 classes), saved as a torch file."""
    torch.manual_seed(1)
    vit = create_model("timesformer_tiny_space", **{**TINY, "num_classes": classes})
    sd = {k: torch.randn_like(v) * 0.2 for k, v in vit.state_dict().items()}
    sd = {(k.replace("head.fc.", "head.") if k.startswith("head.fc.") else k): v for k, v in sd.items()}
    path = tmp_path / "vit.pth"
    torch.save(sd, path)
    return path


def test_image_vit_initialises_divided_attention_as_the_official_code(tmp_path: Path) -> None:
    path = _image_vit(tmp_path)
    model = _tiny("divided")
    load_weights(model, path)  # strict: the temporal parts are filled from the spatial ones
    blocks = model.blocks
    for block in blocks:
        torch.testing.assert_close(block.temporal_attn.qkv.weight, block.attn.qkv.weight)
        torch.testing.assert_close(block.temporal_norm1.weight, block.norm1.weight)
        assert block.temporal_fc.weight.abs().sum() == 0
    assert model.time_embed.abs().sum() == 0
    assert model.head.fc.weight.shape == (5, 48)  # the image classifier was dropped


def test_divided_model_from_a_vit_equals_space_only_on_a_still_clip(tmp_path: Path) -> None:
    """At initialisation (zero temporal_fc and time embedding) a clip of one repeated image gives the
    space-only model's output: the temporal step adds nothing and every frame's CLS copy agrees."""
    path = _image_vit(tmp_path, classes=5)
    divided, space = _tiny("divided"), _tiny("space")
    load_weights(divided, path)
    load_weights(space, path)
    clip = torch.randn(2, 3, 1, 32, 32).expand(-1, -1, 4, -1, -1)
    with torch.no_grad():
        torch.testing.assert_close(divided(clip), space(clip), atol=1e-5, rtol=1e-5)


def test_checkpoint_of_another_frame_size_and_input_width_loads(tmp_path: Path) -> None:
    model = _tiny("divided", img_size=64, in_channels=2)  # a 4 x 4 patch grid of 2-channel (flow) input
    load_weights(model, FIXTURES / "official_divided.pyth")
    assert model.pos_embed.shape == (1, 17, 48)
    assert model.patch_embed.proj.weight.shape == (48, 2, 16, 16)
    with torch.no_grad():
        assert torch.isfinite(model(torch.randn(1, 2, 4, 64, 64))).all()


def test_a_foreign_network_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    torch.save({"conv1.weight": torch.zeros(8, 3, 3, 3)}, path)
    with pytest.raises(WeightsError):
        load_weights(_tiny("divided"), path)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_scheme_learns_from_a_batch(scheme: str) -> None:
    torch.manual_seed(0)
    model = _tiny(scheme, num_frames=4, img_size=64).train()
    clip, labels = torch.randn(4, 3, 4, 64, 64), torch.tensor([0, 1, 2, 3])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(8):
        loss = torch.nn.functional.cross_entropy(model(clip), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.7
    features = model.eval().forward_features(clip)
    tokens = 1 + 16 * (1 if scheme == "space" else 4)
    assert features.shape == (4, tokens, 48)


def test_no_weight_decay_on_the_embeddings() -> None:
    from actionrec.engine.optim import param_groups

    model = _tiny("divided")
    groups = param_groups(model, weight_decay=0.05)
    no_decay = {id(p) for g in groups if g["weight_decay"] == 0 for p in g["params"]}
    assert {id(model.pos_embed), id(model.cls_token), id(model.time_embed)} <= no_decay
    assert id(model.blocks[0].attn.qkv.weight) not in no_decay
    assert model.no_weight_decay() == {"pos_embed", "cls_token", "time_embed"}
    assert _tiny("space").no_weight_decay() == {"pos_embed", "cls_token"}


@pytest.mark.slow
def test_table1_params_and_the_divided_models_gmacs() -> None:
    """Params within 1 % of Table 1 for every scheme (400 classes); the divided model's GMACs at 8 x 224²
    within 3 % of 196 (MMAction2's fvcore count), on the meta device."""
    table1 = {"space": 85.9, "joint": 85.9, "divided": 121.4, "local_global": 121.4, "axial": 156.8}
    for scheme, params_m in table1.items():
        with torch.device("meta"):
            model = create_model(f"timesformer_base_{scheme}")
        assert count_params(model) / 1e6 == pytest.approx(params_m, rel=0.01), scheme
    with torch.device("meta"):
        divided = create_model("timesformer_base_divided")
    gmacs = count_macs(divided, torch.zeros(1, 3, 8, 224, 224)) / 1e9
    assert gmacs == pytest.approx(196, rel=0.03)
