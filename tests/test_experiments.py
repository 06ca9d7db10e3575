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


@pytest.fixture
def ia3_keeps_fp32(monkeypatch):
    """IA3 as a method whose CPU default is fp32 (cpu_bf16=False), which no registry method is today."""
    from peft_imdb.methods import METHODS

    monkeypatch.setitem(METHODS, "ia3", replace(METHODS["ia3"], cpu_bf16=False))


@pytest.mark.unit
def test_precision_pairs_each_method_in_the_fast_precision_with_fp32(monkeypatch, ia3_keeps_fp32):
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
    assert resolve(RunConfig.from_profile(PROFILES["cpu"], "lora")).precision.name == "fp32"  # the study's, stated
    lora = resolve(RunConfig.from_profile(PROFILES["cpu"], "lora", precision="auto"))
    assert lora.precision.name == "bf16" and lora.precision.reason.startswith("auto: ")
    monkeypatch.setitem(METHODS, "lora", replace(METHODS["lora"], cpu_bf16=False))
    kept = resolve(RunConfig.from_profile(PROFILES["cpu"], "lora", precision="auto")).precision
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
    assert {"study", "more-methods", "rank", "targets", "precision", "lr-sweep", "lr-sweep-first", "truncation", "dropout"} <= set(listed)
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


def test_experiment_rank_on_the_smoke_profile_trains_and_reports(tmp_path, data_dir, tiny_models, capsys):
    args = ["--profile", "smoke", "--model", str(tiny_models["bert"]), "--data-dir", str(data_dir), "--results-dir",
            str(tmp_path), "--in-process", "--figures-dir", str(tmp_path / "figures")]
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


def test_the_study_on_a_cpu_without_native_bf16_says_so_first_and_trains_fp32_under_keys_of_its_own(
        tmp_path, data_dir, fake_runs, capsys, monkeypatch, ia3_keeps_fp32):
    import json

    import peft_imdb.hardware as hardware
    import peft_imdb.wall_time as wall_time
    from peft_imdb.results import save_result

    monkeypatch.setenv("PEFT_IMDB_RESULTS", str(tmp_path))  # the estimate reads these runs only
    monkeypatch.setattr(hardware.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(hardware, "read_cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    base = experiments.profile_base(PROFILES["cpu"], precision="auto")  # a study that follows the hardware
    study = [resolve(c) for c in experiment_configs(get_experiment("study"), base, (0,))]
    fp32_arm = [resolve(replace(c, precision="fp32")) for c in experiment_configs(get_experiment("study"), base, (0,))]
    measured = dict(accuracy=0.8, train_samples_per_s=20.0, eval_samples_per_s=100.0, load_time_s=1.0)
    for run in study:  # the study as stored on a CPU with native bf16 (IA3 keeps fp32)
        save_result(run.record("ok", **measured), tmp_path)
    for run in fp32_arm:  # the precision ablation's fp32 arm: the throughput an fp32 estimate goes by
        save_result(run.record("ok", **measured), tmp_path / "ablations" / "precision")
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "mfu_minilm.json").write_text(json.dumps(
        {"cpu": hardware.cpu_description(), "env": {"device": hardware.device_name()},
         "peak_gflops": {"fp32": 200.0, "bf16": 900.0}}))
    assert {r.precision.name for r in study} == {"bf16", "fp32"}

    # The same study asked for on an AVX2-only CPU, whose fp32 matmul is half the stored figure.
    monkeypatch.setattr(hardware, "read_cpu_flags", lambda: frozenset({"avx2"}))
    monkeypatch.setattr(wall_time, "measure_matmul_gflops", lambda dtype: {"fp32": 100.0, "bf16": 1.8}[dtype])
    args = ["experiment", "study", "--profile", "cpu", "--precision", "auto", "--seeds", "0", "--results-dir", str(tmp_path),
            "--figures-dir", str(tmp_path / "figures"), "--in-process", "--data-dir", str(data_dir)]
    assert main([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    bf16_runs = [r for r in study if r.precision.bf16]
    to_train = [r.key for r in fp32_arm if r.key not in {s.key for s in study}]
    assert out[0].startswith(f"The study in {tmp_path} trained in bf16 ({len(bf16_runs)} run(s), on ")
    assert out[1].startswith("This CPU (") and "has no native bf16" in out[1]
    # 2000 / 20 + 5000 / 100 + 1 = 151 s each where measured, twice that here: 4 runs x 302 s.
    assert out[2] == (f"So {len(to_train)} run(s) train in fp32 instead, under run keys of their own, stored in "
                      f"{tmp_path} beside the bf16 runs, which stay as they are; estimated ~20 min on this machine "
                      f"for the {len(to_train)} run(s) to train.")
    assert out[3].startswith("1 stored run(s) are the same runs here")  # IA3, fp32 in both
    assert out[4] == f"plan ({tmp_path}): {len(to_train)} to train, 1 stored already"
    assert out[-1] == "dry run: nothing trained" and fake_runs == [] and not (tmp_path / "figures").exists()

    # For real: the fp32 runs train under their own keys; the bf16 records stay as they were.
    before = {r.key: r.finished_at for r in read_results(tmp_path)}
    monkeypatch.setattr(experiments, "write_reports", lambda *a, **k: [])  # stub rows: no summary to draw
    assert main(args) == 0
    assert capsys.readouterr().out.startswith(f"The study in {tmp_path} trained in bf16")
    assert sorted(fake_runs) == sorted(to_train)
    after = {r.key: r.finished_at for r in read_results(tmp_path)}
    assert {k: after[k] for k in before} == before and set(after) == set(before) | set(to_train)


def test_a_dry_run_prints_the_plan_and_trains_copies_and_writes_nothing(tmp_path, data_dir, tiny_models, fake_runs,
                                                                        capsys):
    common = _smoke(tmp_path, data_dir, tiny_models["bert"])
    assert main(["matrix", "--methods", "lora", "--seeds", "0", *common[:-2]]) == 0  # the "study"
    capsys.readouterr()
    assert main(["ablation", "targets", "--seeds", "0", "--dry-run", *common]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"plan ({tmp_path / 'ablations' / 'targets'}): 3 to train, 1 in the study (copied)"
    assert any(line.startswith("  in the study (copied)  lora ") for line in out)
    assert out[-1] == "dry run: nothing trained" and fake_runs == [read_results(tmp_path)[0].key]
    assert not (tmp_path / "ablations").exists() and not (tmp_path / "figures").exists()
    assert main(["matrix", "--methods", "full", "lora", "--seeds", "0", "1", "--dry-run", *common[:-2]]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"plan ({tmp_path}): 3 to train, 1 stored already" and len(fake_runs) == 1


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
