"""UNet pieces without a pipeline run: PSNR, embeddings files, shape checks, calibration re-recording."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.errors import PipelineError
from pipeline.models.unet import UnetAdapter, psnr_db
from pipeline.recipe.loader import load_recipe
from tests.unet.conftest import tiny_unet_recipe


def test_psnr_uses_the_reference_range() -> None:
    ref = np.array([0.0, 2.0, -2.0, 0.0])
    assert psnr_db(ref, ref) == math.inf
    assert psnr_db(ref, ref + 0.04) == pytest.approx(20 * math.log10(4 / 0.04))


def test_embeddings_file_with_the_wrong_width_is_named(tmp_path: Path) -> None:
    np.savez(tmp_path / "emb.npz", cond=np.zeros((2, 8, 16), np.float32))
    path = tiny_unet_recipe(tmp_path, calibration={"embeddings": str(tmp_path / "emb.npz"), "runs": 1, "steps": 1})
    with pytest.raises(PipelineError, match=r"emb.npz: 'cond' has shape \[2, 8, 16\]; the profile wants \[N, 8, 32\]"):
        UnetAdapter().calibration_set(load_recipe(str(path)), tmp_path / "calib")


def test_embeddings_file_is_used_for_eval(tmp_path: Path) -> None:
    cond = np.full((1, 8, 32), 0.25, np.float32)
    np.savez(tmp_path / "emb.npz", cond=cond, uncond=np.zeros((8, 32), np.float32))
    path = tiny_unet_recipe(tmp_path, eval={"embeddings": str(tmp_path / "emb.npz"), "points": 2})
    feeds = UnetAdapter().eval_feeds(load_recipe(str(path)))
    assert len(feeds) == 2 and feeds[0]["timestep"].tolist() == [feeds[0]["timestep"][0]] * 2
    assert np.all(feeds[1]["encoder_hidden_states"][0] == 0) and np.all(feeds[1]["encoder_hidden_states"][1] == 0.25)


def test_profile_that_does_not_match_the_model_is_refused(tmp_path: Path) -> None:
    path = tiny_unet_recipe(tmp_path)
    raw = yaml.safe_load(path.read_text())
    # A well-formed profile (min <= opt <= max, else the schema refuses it first) for another text encoder.
    raw["profiles"][0]["shapes"]["encoder_hidden_states"] = {"min": [1, 8, 768], "opt": [2, 8, 768], "max": [2, 8, 768]}
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(PipelineError, match="cross_attention_dim 32"):
        UnetAdapter().eval_feeds(load_recipe(str(path)))


def test_changed_calibration_settings_rerecord(tmp_path: Path) -> None:
    adapter = UnetAdapter()
    first = adapter.calibration_set(load_recipe(str(tiny_unet_recipe(
        tmp_path, calibration={"runs": 1, "steps": 2}))), tmp_path / "calib")
    assert first.count == 2
    again = adapter.calibration_set(load_recipe(str(tiny_unet_recipe(
        tmp_path, calibration={"runs": 1, "steps": 3}))), tmp_path / "calib")
    assert again.count == 3 and len(list(again.path.glob("sample_*.npz"))) == 3
