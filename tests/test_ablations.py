"""Ablations: the runs each one makes, reuse of the study's runs, and one end to end on a tiny model."""

import pytest

from peft_imdb.ablations import RANKS, ablation_configs
from peft_imdb.cli import main
from peft_imdb.config import RunConfig
from peft_imdb.methods import method_names
from peft_imdb.targets import placement
from peft_imdb.errors import UserError
from peft_imdb.results import read_results


def _base(model: str = "minilm", **overrides) -> dict[str, RunConfig]:
    return {m: RunConfig(model=model, method=m, **overrides) for m in method_names(core_only=True)}


def test_rank_sweep_keeps_alpha_over_rank_and_contains_the_default_run():
    base = _base()
    configs = ablation_configs("rank", base)
    ranks = [c.peft_config().r for c in configs]
    assert ranks == list(RANKS)
    assert all(c.peft_config().lora_alpha == 2 * r and c.method == "lora" for c, r in zip(configs, ranks))
    assert base["lora"].key() in {c.key() for c in configs}  # r=8 is the study's own LoRA run


def test_precision_pairs_each_method_in_the_fast_precision_with_fp32(monkeypatch):
    import peft_imdb.hardware as hardware

    monkeypatch.setattr(hardware, "resolve_precision", lambda requested="auto", cpu_bf16=True: "bf16")
    base = _base()
    configs = ablation_configs("precision", base)
    assert [(c.method, c.precision) for c in configs] == [(m, p) for m in base for p in ("bf16", "fp32")]
    assert len({c.key() for c in configs}) == len(configs)  # precision is part of a run's identity
    monkeypatch.setattr(hardware, "resolve_precision", lambda requested="auto", cpu_bf16=True: "fp32")
    assert [c.precision for c in ablation_configs("precision", base)] == ["fp32"] * len(base)  # nothing to compare


def test_a_method_whose_bf16_is_not_equivalent_defaults_to_fp32_on_a_bf16_cpu(monkeypatch):
    import peft_imdb.hardware as hardware
    from dataclasses import replace

    from peft_imdb.config import PROFILES
    from peft_imdb.methods import METHODS

    monkeypatch.setattr(hardware, "read_cpu_flags", lambda: frozenset({"avx512_bf16"}))
    monkeypatch.setattr(hardware.torch.cuda, "is_available", lambda: False)
    assert RunConfig.from_profile(PROFILES["cpu"], "lora").precision == "bf16"
    monkeypatch.setitem(METHODS, "lora", replace(METHODS["lora"], cpu_bf16=False))
    assert RunConfig.from_profile(PROFILES["cpu"], "lora").precision == "fp32"
    assert RunConfig.from_profile(PROFILES["cpu"], "lora", precision="bf16").precision == "bf16"  # asked for


def test_targets_compare_attention_with_attention_plus_feed_forward():
    configs = ablation_configs("targets", _base())
    labels = [(c.method, placement(sorted(c.peft_config().target_modules), "bert")) for c in configs]
    assert labels == [("lora", "attention"), ("lora", "attention + FFN"), ("ia3", "attention"),
                      ("ia3", "attention + FFN")]


def test_unknown_ablation_is_a_clear_error():
    with pytest.raises(UserError, match="rank, targets, precision"):
        ablation_configs("depth", _base())


def test_targets_ablation_runs_and_reuses_the_study(tmp_path, data_dir, tiny_models, capsys):
    common = ["--model", str(tiny_models["bert"]), "--profile", "smoke", "--train-size", "16", "--eval-size", "16",
              "--val-size", "0", "--max-length", "32", "--data-dir", str(data_dir), "--results-dir", str(tmp_path),
              "--in-process"]
    assert main(["matrix", "--methods", "lora", "--seeds", "0", *common]) == 0  # the "study"
    assert main(["ablation", "targets", "--figures-dir", str(tmp_path / "figures"), *common]) == 0
    out = capsys.readouterr().out
    assert "reused 1 finished run(s) of the main study" in out and "ablation_targets.png" in out
    rows = read_results(tmp_path / "ablations" / "targets")
    assert len(rows) == 4 and {r.status for r in rows} == {"ok"}
    lora = sorted((r.trainable_params, r.target_modules) for r in rows if r.method == "lora")
    assert lora[0][0] < lora[1][0]  # attention + FFN trains more parameters than query/value
