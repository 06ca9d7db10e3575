"""Experiments as data: the runs each one plans, reuse of the study's runs, the verb that runs any of them, and a
run resolved once on its way from the command line to its record."""

from dataclasses import replace

import pytest

from peft_imdb import experiments
from peft_imdb.cli import main
from peft_imdb.config import PROFILES, RunConfig
from peft_imdb.errors import UserError
from peft_imdb.experiments import RANKS, EXPERIMENTS, Experiment, experiment_configs, get_experiment
from peft_imdb.methods import method_names
from peft_imdb.resolved import resolve
from peft_imdb.results import read_results
from peft_imdb.targets import placement


def _base(method: str, seed: int) -> RunConfig:
    return RunConfig(model="minilm", method=method, seed=seed)


@pytest.mark.unit
def test_rank_keeps_alpha_over_rank_and_contains_the_default_run():
    runs = [resolve(c) for c in experiment_configs(get_experiment("rank"), _base, (0,))]
    assert [run.peft_config.r for run in runs] == list(RANKS)
    assert all(run.peft_config.lora_alpha == 2 * run.peft_config.r and run.config.method == "lora" for run in runs)
    assert resolve(_base("lora", 0)).key in {run.key for run in runs}  # r=8 is the study's own LoRA run


@pytest.mark.unit
def test_precision_pairs_each_method_in_the_fast_precision_with_fp32(monkeypatch):
    import peft_imdb.hardware as hardware

    monkeypatch.setattr(hardware.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(hardware, "read_cpu_flags", lambda: frozenset({"avx512_bf16"}))
    runs = [resolve(c) for c in experiment_configs(get_experiment("precision"), _base, (0,))]
    assert [(r.config.method, r.precision.name) for r in runs] == [
        (m, p) for m in method_names(core_only=True) for p in ("bf16", "fp32")]
    assert len({r.key for r in runs}) == len(runs)  # precision is part of a run's identity
    ia3 = next(r for r in runs if r.config.method == "ia3" and r.precision.bf16)
    assert "requested" not in ia3.precision.reason and "fp32 CPU default set aside" in ia3.precision.reason
    monkeypatch.setattr(hardware, "read_cpu_flags", lambda: frozenset({"avx2"}))
    runs = {resolve(c).key for c in experiment_configs(get_experiment("precision"), _base, (0,))}
    assert len(runs) == len(method_names(core_only=True))  # no native bf16: both arms are the same fp32 run


@pytest.mark.unit
def test_auto_precision_says_why_and_keeps_fp32_for_a_method_whose_bf16_is_not_equivalent(monkeypatch):
    import peft_imdb.hardware as hardware
    from peft_imdb.methods import METHODS

    monkeypatch.setattr(hardware, "read_cpu_flags", lambda: frozenset({"avx512_bf16"}))
    monkeypatch.setattr(hardware.torch.cuda, "is_available", lambda: False)
    lora = resolve(RunConfig.from_profile(PROFILES["cpu"], "lora"))
    assert lora.precision.name == "bf16" and lora.precision.reason.startswith("auto: ")
    monkeypatch.setitem(METHODS, "lora", replace(METHODS["lora"], cpu_bf16=False))
    kept = resolve(RunConfig.from_profile(PROFILES["cpu"], "lora")).precision
    assert kept.name == "fp32" and "cpu_bf16=False" in kept.reason
    asked = resolve(RunConfig.from_profile(PROFILES["cpu"], "lora", precision="bf16")).precision
    assert asked.name == "bf16" and asked.reason.startswith("bf16 requested")


@pytest.mark.unit
def test_targets_compare_attention_with_attention_plus_feed_forward():
    runs = [resolve(c) for c in experiment_configs(get_experiment("targets"), _base, (0,))]
    assert [(r.config.method, placement(sorted(r.peft_config.target_modules), "bert")) for r in runs] == [
        ("lora", "attention"), ("lora", "attention + FFN"), ("ia3", "attention"), ("ia3", "attention + FFN")]


def test_every_experiment_is_listed_with_its_runs(capsys):
    assert main(["experiment", "--list", "--profile", "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    listed = {line.split()[0]: int(line.split()[1]) for line in lines}
    assert {"study", "more-methods", "rank", "targets", "precision", "lr-sweep", "truncation", "dropout"} <= set(listed)
    assert listed["study"] == 25  # 4 methods and QLoRA's LoRA twin x 5 seeds
    assert listed["rank"] == 3 * len(RANKS)


def test_an_unknown_experiment_is_a_one_line_error(capsys):
    assert main(["experiment", "depth"]) == 2
    assert main(["ablation", "depth"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "unknown experiment 'depth'" in err[0] and "rank, targets, precision" in err[1]
    with pytest.raises(UserError):
        get_experiment("depth")


def _smoke(tmp_path, data_dir, model) -> list[str]:
    return ["--model", str(model), "--profile", "smoke", "--train-size", "16", "--eval-size", "16", "--val-size", "0",
            "--max-length", "32", "--data-dir", str(data_dir), "--results-dir", str(tmp_path), "--in-process",
            "--figures-dir", str(tmp_path / "figures")]


def test_the_targets_experiment_runs_and_reuses_the_study(tmp_path, data_dir, tiny_models, capsys):
    common = _smoke(tmp_path, data_dir, tiny_models["bert"])
    assert main(["matrix", "--methods", "lora", "--seeds", "0", *common[:-2]]) == 0  # the "study"
    assert main(["ablation", "targets", "--seeds", "0", *common]) == 0
    out = capsys.readouterr().out
    assert "reused 1 finished run(s) of the main study" in out and "ablation_targets.png" in out
    rows = read_results(tmp_path / "ablations" / "targets")
    assert len(rows) == 4 and {r.status for r in rows} == {"ok"}
    lora = sorted((r.trainable_params, r.target_modules) for r in rows if r.method == "lora")
    assert lora[0][0] < lora[1][0]  # attention + FFN trains more parameters than query/value


@pytest.mark.system  # the offline MiniLM itself, trained (smoke size): not a tiny random model
def test_experiment_rank_on_the_smoke_profile_trains_and_reports(tmp_path, data_dir, capsys):
    args = ["--profile", "smoke", "--data-dir", str(data_dir), "--results-dir", str(tmp_path), "--in-process",
            "--figures-dir", str(tmp_path / "figures")]
    assert main(["experiment", "rank", "--seeds", "0", *args]) == 0
    out = capsys.readouterr().out
    rows = read_results(tmp_path / "ablations" / "rank")
    assert sorted(r.identity.get("adapter", {}).get("r", 8) for r in rows) == list(RANKS)
    assert {r.status for r in rows} == {"ok"} and "ablation_rank.png" in out
    assert (tmp_path / "figures" / "ablation_rank.png").stat().st_size > 0


def test_a_toy_experiment_is_one_record_and_runs_with_no_other_file_touched(tmp_path, data_dir, fake_runs,
                                                                           monkeypatch, capsys):
    summaries = []

    def summarize(profile, root, figures, complete):
        summaries.append((root, complete))
        return [root / "toys" / "toy.md"]

    toy = Experiment("toy", "Full FT at two learning rates.", (0, 1),
                     runs=lambda base, seeds: [replace(base("full", s), lr=lr) for s in seeds for lr in (1e-4, 2e-4)],
                     folder=lambda profile, root: root / "toys", summarize=summarize)
    monkeypatch.setitem(EXPERIMENTS, "toy", toy)
    assert main(["experiment", "--list", "--profile", "smoke"]) == 0
    assert any(line.startswith("toy") and " 4 run(s)" in line for line in capsys.readouterr().out.splitlines())
    assert main(["experiment", "toy", "--profile", "smoke", "--results-dir", str(tmp_path), "--in-process",
                 "--data-dir", str(data_dir)]) == 0
    assert len(fake_runs) == 4 and summaries == [(tmp_path, True)]
    assert len(read_results(tmp_path / "toys")) == 4
    assert main(["experiment", "toy", "--profile", "smoke", "--results-dir", str(tmp_path), "--in-process",
                 "--data-dir", str(data_dir)]) == 0
    assert len(fake_runs) == 4  # finished runs are not trained again


def test_a_run_is_resolved_once_from_the_command_line_to_its_record(tmp_path, data_dir, fake_runs, monkeypatch):
    from peft_imdb import resolved

    counted = []
    identity = resolved._identity
    monkeypatch.setattr(resolved, "_identity", lambda config, peft: counted.append(config.method) or
                        identity(config, peft))
    assert main(["run", "--method", "lora", "--profile", "smoke", "--results-dir", str(tmp_path),
                 "--data-dir", str(data_dir)]) == 0
    assert counted == ["lora"] and len(fake_runs) == 1
    (record,) = read_results(tmp_path)
    assert record.label == "lora" and record.key == fake_runs[0] and record.precision_reason


def test_an_experiment_in_another_store_copies_the_committed_runs_and_trains_only_the_missing(tmp_path, fake_runs,
                                                                                             monkeypatch):
    """What 06 does: the committed study's runs of the experiment (every seed) copied, the rest trained apart."""
    from conftest import store_ok_row
    from peft_imdb.experiments import profile_base, run_experiment
    from peft_imdb.plan import resolve_all

    toy = Experiment("toy", "Full FT at two learning rates.", (0, 1),
                     runs=lambda base, seeds: [replace(base("full", s), lr=lr) for s in seeds for lr in (1e-4, 2e-4)],
                     folder=lambda profile, root: root / "toys", summarize=lambda *args: [])
    monkeypatch.setitem(EXPERIMENTS, "toy", toy)
    smoke, study, mine = PROFILES["smoke"], tmp_path / "study", tmp_path / "mine"
    base = profile_base(smoke)
    runs = resolve_all(experiment_configs(toy, base))  # seed 0 and 1, each at two rates
    committed = [run for run in runs if run.config.lr == 1e-4]
    for run in committed:
        store_ok_row(run, study / "toys")
    before = sorted(p.read_bytes() for p in study.rglob("*.json"))
    code, _ = run_experiment("toy", smoke, base, mine, tmp_path / "figures", seeds=(0,), study=study)
    assert code == 0
    assert fake_runs == [run.key for run in runs if run.seed == 0 and run.config.lr == 2e-4]
    assert sorted(r.key for r in read_results(mine / "toys")) == sorted([*fake_runs, *(r.key for r in committed)])
    assert sorted(p.read_bytes() for p in study.rglob("*.json")) == before  # the committed study only read
