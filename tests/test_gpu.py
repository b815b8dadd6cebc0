"""CUDA paths: mixed precision, channels_last, evaluation. Run with `pytest -m gpu`."""

import pytest
import torch

from indoorseg.config import load_config
from indoorseg.evaluation import evaluate_model
from indoorseg.runtime import make_runtime
from indoorseg.training import train

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_auto_runtime_on_cuda_uses_bf16_and_channels_last():
    runtime = make_runtime()
    assert runtime.device.type == "cuda"
    assert runtime.amp_dtype == torch.bfloat16 and runtime.channels_last


def test_train_on_cuda_then_evaluate_on_cpu_and_cuda_agree(blocks, tmp_path):
    config = load_config(
        None,
        [
            "model.name=deeplabv3plus_resnet18",
            "data.crop=[48,48]",
            "data.batch_size=2",
            "data.workers=0",
            "optim.epochs=3",
            "optim.lr=1e-3",
        ],
    )
    result = train(config, blocks, tmp_path / "run")
    assert result["train_loss"] < 1.2
    on_cuda = evaluate_model(tmp_path / "run", blocks, device="cuda")
    on_cpu = evaluate_model(tmp_path / "run", blocks, device="cpu")
    # bf16 on the GPU vs float32 on the CPU: the same decisions on nearly every pixel.
    assert abs(on_cuda["metrics"]["pixel_accuracy"] - on_cpu["metrics"]["pixel_accuracy"]) < 0.02
