"""Precision: bf16 on a CPU only where the CPU has bf16 instructions (emulated bf16 ran an epoch 13.6x slower
than fp32); fp16 on CUDA only. The CPU is monkeypatched: these tests do not depend on the machine."""

import logging

import pytest
import torch

from effnet.runtime.cpu import CpuInfo
from effnet.training import options
from effnet.training.options import CPU_BF16_VARIABLE, Precision

CPU = torch.device("cpu")


def on_cpu(monkeypatch, bf16):
    monkeypatch.delenv(CPU_BF16_VARIABLE, raising=False)
    monkeypatch.setattr(options, "cpu_info", lambda: CpuInfo("Intel Xeon 8380", ("avx2",), bf16=bf16))


def test_bf16_on_a_cpu_without_bf16_instructions_is_refused_with_the_fix(monkeypatch):
    on_cpu(monkeypatch, bf16=False)
    with pytest.raises(ValueError, match=r"--precision bf16 runs emulated .*14x slower.*--precision fp32"):
        Precision("bf16", CPU)
    monkeypatch.setenv(CPU_BF16_VARIABLE, "1")  # the override
    assert Precision("bf16", CPU).dtype == torch.bfloat16


def test_bf16_on_a_cpu_with_bf16_instructions_autocasts(monkeypatch):
    on_cpu(monkeypatch, bf16=True)
    precision = Precision("bf16", CPU)
    with precision.autocast():
        assert torch.mm(torch.ones(2, 2), torch.ones(2, 2)).dtype == torch.bfloat16


def test_bf16_on_an_unknown_cpu_warns(monkeypatch, caplog):
    on_cpu(monkeypatch, bf16=None)
    with caplog.at_level(logging.WARNING):
        assert Precision("bf16", CPU).dtype == torch.bfloat16
    assert "cannot tell whether this CPU has bf16" in caplog.text


def test_fp16_on_cpu_is_refused_and_fp32_needs_no_check(monkeypatch):
    on_cpu(monkeypatch, bf16=True)
    with pytest.raises(ValueError, match=r"fp16 needs a CUDA device.*--precision fp32"):
        Precision("fp16", CPU)
    on_cpu(monkeypatch, bf16=False)
    assert Precision("fp32", CPU).dtype is None
