"""Training precision from the hardware (CPU flags, CUDA capability), the Trainer's arguments for it,
a real bf16 Trainer run on CPU, the fused optimizer and QLoRA's compute dtype."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from peft_imdb import hardware
from peft_imdb.errors import UserError
from peft_imdb.hardware import (choose_precision, cpu_description, fused_optimizer, qlora_compute_dtype,
                                resolve_precision, trainer_precision_args)

NATIVE = {"avx2", "avx512f", "avx512_bf16"}
AMX = {"avx2", "amx_bf16", "amx_tile"}
PLAIN = {"avx2", "fma"}


@pytest.mark.parametrize("flags, expected", [(NATIVE, "bf16"), (AMX, "bf16"), (PLAIN, "fp32"), (set(), "fp32")])
def test_auto_on_cpu_follows_the_native_bf16_flags(flags, expected):
    precision = choose_precision("auto", cuda=False, cpu_flags=flags)
    assert precision.name == expected and precision.reason.startswith("auto")


def test_explicit_requests_override_the_hardware_on_cpu():
    assert choose_precision("fp32", cuda=False, cpu_flags=NATIVE).name == "fp32"
    emulated = choose_precision("bf16", cuda=False, cpu_flags=PLAIN)
    assert emulated.name == "bf16" and "emulated" in emulated.reason
    assert "natively" in choose_precision("bf16", cuda=False, cpu_flags=NATIVE).reason


@pytest.mark.parametrize("flags, cuda, capability, expected", [
    (NATIVE, False, None, {"fp32", "bf16"}), (AMX, False, None, {"fp32", "bf16"}), (PLAIN, False, None, {"fp32"}),
    (PLAIN, True, (7, 5), {"fp32", "fp16"}), (PLAIN, True, (8, 0), {"fp32", "fp16", "bf16"})])
def test_native_precisions_follow_the_flags_and_the_capability(flags, cuda, capability, expected):
    assert hardware.native_precisions(flags, cuda, capability) == expected


def test_a_cpu_kind_reads_as_words():
    assert hardware.cpu_kind_text({"cpu_model": "AMD EPYC", "bf16_flags": ["avx512_bf16"], "avx512f": True}) == \
        "AMD EPYC with avx512_bf16"
    assert hardware.cpu_kind_text({"cpu_model": "AMD EPYC", "bf16_flags": [], "avx512f": False}) == \
        "AMD EPYC without native bf16 (no AVX-512)"
    assert hardware.cpu_kind_text({}) == "a CPU not recorded"
    assert hardware.bf16_support(cuda=False, cpu_flags=PLAIN) == (False, "CPU without avx512_bf16/amx_bf16")


def test_fp16_on_cpu_is_refused_as_a_silent_no_op():
    with pytest.raises(UserError, match="silent no-op"):
        choose_precision("fp16", cuda=False, cpu_flags=NATIVE)
    with pytest.raises(UserError, match="silent no-op"):
        trainer_precision_args("fp16", cuda=False)


def test_unknown_precision_is_a_user_error():
    with pytest.raises(UserError, match="auto, fp32, bf16, fp16"):
        choose_precision("fp8", cuda=False)
    with pytest.raises(UserError):
        trainer_precision_args("auto", cuda=False)  # the Trainer gets a resolved name only


@pytest.mark.parametrize("requested, capability, expected", [
    ("auto", (7, 5), "fp16"), ("auto", (8, 0), "bf16"), ("auto", (9, 0), "bf16"),
    ("fp32", (8, 0), "fp32"), ("fp16", (8, 0), "fp16"), ("bf16", (7, 5), "bf16")])
def test_cuda_rules_from_compute_capability(requested, capability, expected, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # what a T4 may answer: ignored
    precision = choose_precision(requested, capability=capability, cuda=True)
    assert precision.name == expected and f"{capability[0]}.{capability[1]}" in precision.reason
    if requested == "bf16" and capability < (8, 0):
        assert "emulated" in precision.reason


def test_resolve_precision_names_what_this_machine_chooses():
    assert resolve_precision() == choose_precision().name in ("fp32", "bf16", "fp16")
    assert resolve_precision("fp32") == "fp32"


def test_trainer_arguments_per_precision():
    assert trainer_precision_args("bf16", cuda=False) == {"bf16": True, "fp16": False, "use_cpu": True}
    assert trainer_precision_args("fp32", cuda=False) == {"bf16": False, "fp16": False, "use_cpu": True}
    assert trainer_precision_args("fp16", cuda=True) == {"bf16": False, "fp16": True, "use_cpu": False}
    assert trainer_precision_args("bf16", cuda=True) == {"bf16": True, "fp16": False, "use_cpu": False}


def test_cpu_description_for_records():
    described = cpu_description()
    assert set(described) == {"cpu_model", "bf16_flags", "avx512f", "torch_threads"}
    assert set(described["bf16_flags"]) <= hardware.NATIVE_BF16_FLAGS and described["torch_threads"] >= 1


def _tiny_bert():
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, num_labels=2)
    return BertForSequenceClassification(config)


@pytest.mark.integration
def test_bf16_trainer_run_on_cpu_autocasts_train_and_eval_and_keeps_fp32_master_weights(tmp_path):
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments

    model = _tiny_bert()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    rng = np.random.default_rng(0)
    data = Dataset.from_dict({"input_ids": rng.integers(5, 100, (16, 12)).tolist(),
                              "labels": rng.integers(0, 2, 16).tolist()})
    inner = []  # dtype of an inner linear layer's output: bf16 under autocast
    model.bert.encoder.layer[0].attention.self.query.register_forward_hook(lambda m, a, out: inner.append(out.dtype))
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=8,
                             learning_rate=1e-2, report_to=[], save_strategy="no", disable_tqdm=True,
                             optim=fused_optimizer(), **trainer_precision_args("bf16", cuda=False))
    trainer = Trainer(model=model, args=args, train_dataset=data)
    trainer.train()
    assert inner and set(inner) == {torch.bfloat16}  # (a) it ran, in bf16 autocast
    assert all(not torch.equal(before[n], p) for n, p in model.named_parameters())  # (b) every weight moved
    assert {p.dtype for p in model.parameters()} == {torch.float32}  # (c) fp32 master weights
    if fused_optimizer() == "adamw_torch_fused":
        assert trainer.optimizer.defaults["fused"] is True
    inner.clear()
    prediction = trainer.predict(data)
    assert set(inner) == {torch.bfloat16}  # evaluation runs under bf16 autocast too
    # accelerate casts the model's outputs back to fp32: the logits come back in fp32, not bf16.
    assert prediction.predictions.dtype == np.float32


def test_fused_optimizer_steps_here_and_falls_back_to_plain_adamw(monkeypatch):
    assert fused_optimizer() == "adamw_torch_fused"  # torch 2.13 has fused AdamW on CPU
    fused_optimizer.cache_clear()

    def no_fused(*args, fused=None, **kwargs):
        raise RuntimeError("fused=True requires all the params to be floating point Tensors of supported devices")

    monkeypatch.setattr(torch.optim, "AdamW", no_fused)
    try:
        assert fused_optimizer() == "adamw_torch"
    finally:
        fused_optimizer.cache_clear()


def test_qlora_compute_dtype_follows_precision():
    assert qlora_compute_dtype("fp32", cuda=False)[0] == torch.float32
    assert qlora_compute_dtype("fp16", cuda=True)[0] == torch.float16
    assert qlora_compute_dtype("bf16", cuda=True)[0] == torch.bfloat16
    with pytest.raises(UserError):
        qlora_compute_dtype("fp16", cuda=False)


def test_qlora_bf16_compute_on_cpu_matches_fp32_or_falls_back():
    ok, _ = hardware.nf4_support()
    if not ok:
        pytest.skip("bitsandbytes cannot run NF4 here")
    dtype, reason = qlora_compute_dtype("bf16", cuda=False)
    # bitsandbytes 0.50.2 on CPU: bf16 compute runs forward and backward within bf16 rounding of fp32.
    assert dtype == torch.bfloat16 and "matches fp32" in reason


def test_qlora_falls_back_to_fp32_with_the_reason(monkeypatch):
    monkeypatch.setattr(hardware, "_nf4_bf16_on_cpu", lambda: (False, "NF4 with bf16 compute fails on this CPU"))
    assert qlora_compute_dtype("bf16", cuda=False) == (torch.float32, "NF4 with bf16 compute fails on this CPU")
