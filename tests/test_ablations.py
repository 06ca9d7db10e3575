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


def test_lr_grid_is_three_rates_per_method_around_the_default():
    base = _base()
    configs = ablation_configs("lr", base)
    assert len(configs) == 3 * len(base)
    for method in base:
        rates = sorted(c.learning_rate for c in configs if c.method == method)
        default = base[method].learning_rate
        assert rates[1] == default and rates[0] < default < rates[2]
        assert base[method].key() in {c.key() for c in configs}


def test_targets_compare_attention_with_attention_plus_feed_forward():
    configs = ablation_configs("targets", _base())
    labels = [(c.method, placement(sorted(c.peft_config().target_modules), "bert")) for c in configs]
    assert labels == [("lora", "attention"), ("lora", "attention + FFN"), ("ia3", "attention"),
                      ("ia3", "attention + FFN")]


def test_unknown_ablation_is_a_clear_error():
    with pytest.raises(UserError, match="rank, targets, lr"):
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
