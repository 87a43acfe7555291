"""The epsilon-prediction error: by hand on a graph whose prediction is known, and on the trained UNet
fixture against the same error computed in PyTorch."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from pipeline.errors import PipelineError
from pipeline.evaluation.denoise import epsilon_error, error_ratio, noised_latents

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "unet"


def _scaled_sample_graph(path: Path, scale: float, size: int = 8) -> ort.InferenceSession:
    """A stand-in denoiser whose prediction is `scale * sample` (the other inputs are read, unused)."""
    inputs = [helper.make_tensor_value_info("sample", TensorProto.FLOAT, ["b", 4, size, size]),
              helper.make_tensor_value_info("timestep", TensorProto.FLOAT, ["b"]),
              helper.make_tensor_value_info("encoder_hidden_states", TensorProto.FLOAT, ["b", 77, 64])]
    out = helper.make_tensor_value_info("out_sample", TensorProto.FLOAT, ["b", 4, size, size])
    k = helper.make_tensor("k", TensorProto.FLOAT, [], [scale])
    graph = helper.make_graph([helper.make_node("Mul", ["sample", "k"], ["out_sample"])], "g", inputs, [out], [k])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_error_by_hand(tmp_path: Path) -> None:
    # At alpha_bar = 0 the noised sample is the noise itself: predicting `sample` is exact (error 0),
    # predicting 0.5 * sample leaves an error of mean((0.5 eps) ** 2) = 0.25 * mean(eps ** 2).
    alphas = np.array([1.0, 0.0])
    x0 = np.ones((6, 4, 8, 8), np.float32)
    t = np.array([1, 1, 1, 1, 1, 0])
    xt, eps = noised_latents(x0, t, alphas, np.random.default_rng(0))
    np.testing.assert_allclose(xt[:5], eps[:5], atol=1e-6)
    np.testing.assert_allclose(xt[5], x0[5])
    held = {"sample": xt, "timestep": t, "noise": eps, "encoder_hidden_states": np.zeros((6, 77, 64), np.float32)}
    exact = epsilon_error(_scaled_sample_graph(tmp_path / "one.onnx", 1.0), held, batch=4)
    assert exact["by_timestep"][1] == pytest.approx(0.0, abs=1e-12) and exact["samples"] == 6
    # At t = 0 the prediction is x0 = 1, the truth eps: error = mean((1 - eps) ** 2).
    assert exact["by_timestep"][0] == pytest.approx(float(((1 - eps[5].astype(np.float64)) ** 2).mean()))
    half = epsilon_error(_scaled_sample_graph(tmp_path / "half.onnx", 0.5), held, batch=4)
    assert half["by_timestep"][1] == pytest.approx(0.25 * float((eps[:5].astype(np.float64) ** 2).mean()), rel=1e-6)
    assert list(half["by_timestep"]) == [1, 0]  # from noisiest to cleanest
    assert error_ratio(half, half)["ratio"] == pytest.approx(1.0)


def test_bad_heldout_sets_are_errors(tmp_path: Path) -> None:
    session = _scaled_sample_graph(tmp_path / "g.onnx", 1.0)
    with pytest.raises(PipelineError, match="lack noise"):
        epsilon_error(session, {"sample": np.zeros((1, 4, 8, 8)), "timestep": np.zeros(1),
                                "encoder_hidden_states": np.zeros((1, 77, 64))})
    with pytest.raises(PipelineError, match="timesteps must lie in 0..1"):
        noised_latents(np.zeros((1, 4, 8, 8)), np.array([2]), np.array([1.0, 0.5]), np.random.default_rng(0))


def test_adapter_ground_truth_reads_the_recipes_held_out_latents(tmp_path: Path) -> None:
    """`eval.latents`: the adapter's epsilon error is epsilon_error's over the same .npz, a subset spread
    over its timesteps; a file without the noise is a one-line error naming the key and the file."""
    from pipeline.models import get_adapter
    from pipeline.recipe.loader import load_recipe

    sys.path.insert(0, str(FIXTURE))
    from make_latents import heldout_set

    held = heldout_set(per_timestep=2)
    np.savez(tmp_path / "held.npz", **held)
    session = _scaled_sample_graph(tmp_path / "half.onnx", 0.5, size=32)
    recipe = load_recipe(str(FIXTURE / "unet.yaml"), [f"eval.latents={tmp_path / 'held.npz'}"])
    adapter = get_adapter("unet")
    truth = adapter.ground_truth(recipe, tmp_path / "half.onnx")
    direct = epsilon_error(session, held)
    assert truth["samples"] == 12 and truth["metrics"]["eps_mse"] == pytest.approx(direct["mse"], rel=1e-9)
    assert truth["metrics"]["eps_mse_t50"] == pytest.approx(direct["by_timestep"][50], rel=1e-9)
    subset = adapter.ground_truth(recipe, tmp_path / "half.onnx", samples=6)
    assert subset["samples"] == 6 and sorted(k for k in subset["metrics"] if k != "eps_mse") == sorted(
        f"eps_mse_t{t}" for t in (999, 800, 600, 400, 200, 50))
    np.savez(tmp_path / "bad.npz", **{k: v for k, v in held.items() if k != "noise"})
    bad = load_recipe(str(FIXTURE / "unet.yaml"), [f"eval.latents={tmp_path / 'bad.npz'}"])
    with pytest.raises(PipelineError, match=r"eval.latents .*bad.npz lack noise"):
        adapter.ground_truth(bad, tmp_path / "half.onnx")


@pytest.mark.slow
def test_trained_fixture_error_on_onnx_equals_pytorch(tmp_path: Path) -> None:
    import torch
    from diffusers import UNet2DConditionModel

    sys.path.insert(0, str(FIXTURE))
    from make_latents import heldout_set

    unet = UNet2DConditionModel.from_pretrained(str(FIXTURE / "model" / "unet")).eval()

    class NoisePrediction(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.unet = unet

        def forward(self, sample, timestep, encoder_hidden_states):  # type: ignore[no-untyped-def]
            return self.unet(sample, timestep, encoder_hidden_states=encoder_hidden_states, return_dict=False)[0]

    held = heldout_set(per_timestep=2)
    args = tuple(torch.from_numpy(held[k][:2]).float() for k in ("sample", "timestep", "encoder_hidden_states"))
    with torch.no_grad():
        torch.onnx.export(NoisePrediction().eval(), args, str(tmp_path / "unet.onnx"),
                          input_names=["sample", "timestep", "encoder_hidden_states"], output_names=["out_sample"],
                          dynamic_axes={"sample": {0: "b"}, "timestep": {0: "b"}, "encoder_hidden_states": {0: "b"},
                                        "out_sample": {0: "b"}}, opset_version=17, dynamo=False)
        pred = unet(torch.from_numpy(held["sample"]), torch.from_numpy(held["timestep"]),
                    encoder_hidden_states=torch.from_numpy(held["encoder_hidden_states"])).sample.numpy()
    session = ort.InferenceSession(str(tmp_path / "unet.onnx"), providers=["CPUExecutionProvider"])
    got = epsilon_error(session, held)
    assert got["mse"] == pytest.approx(float(((pred.astype(np.float64) - held["noise"]) ** 2).mean()), rel=1e-4)
    # Trained: far below the error of predicting nothing (mean eps ** 2 = 1), worst near t = 0.
    assert got["mse"] < 0.1 and got["by_timestep"][50] == max(got["by_timestep"].values())
