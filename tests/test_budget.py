"""The budget experiment: its points pair with the study, its largest points wait for their learning-rate check,
and its summary reads each point against its own Full FT."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from peft_imdb.budget import (BUDGET_METHODS, CHECK_SIZE, POINTS, SIZES, budget_table, nesting, point_of,
                              stored_runs, write_budget_summary)
from peft_imdb.config import PROFILES
from peft_imdb.experiments import experiment_configs, experiment_request, get_experiment, profile_base
from peft_imdb.resolved import resolve
from peft_imdb.results import save_predictions, save_result

CPU = PROFILES["cpu"]


def _planned(root, provisional=False):
    return experiment_request(get_experiment("budget"), CPU, root=root, provisional=provisional)[0]


def test_every_point_is_the_study_recipe_at_another_budget_and_the_2000_point_is_the_study_itself(tmp_path):
    configs = _planned(tmp_path, provisional=True)
    assert len(configs) == len(BUDGET_METHODS) * sum(p.seeds for p in POINTS) == 80
    study = {resolve(c).key for c in experiment_configs(get_experiment("study"), profile_base(CPU))}
    at_2000 = [c for c in configs if c.train_size == 2000]
    assert len(at_2000) == 12 and {resolve(c).key for c in at_2000} <= study  # reused, not a different draw
    for config in configs:  # the study's reviews to test on, recipe and precision: only the budget differs
        base = profile_base(CPU)(config.method, config.seed)
        assert replace(config, train_size=base.train_size, epochs=base.epochs, max_length=base.max_length,
                       score_remaining=False) == base
        assert config.score_remaining == (config.train_size is None)  # all reviews: scored on every fresh review too
    reference = [c for c in configs if point_of(c).kind == "reference"]
    assert {(c.train_size, c.epochs, c.max_length) for c in reference} == {(3000, 3.0, 256)}
    assert {c.seed for c in configs if c.train_size is None} == {0, 1}


def test_the_largest_points_wait_for_the_check_and_then_train_at_its_picks(tmp_path):
    assert not [c for c in _planned(tmp_path) if point_of(c).checked]  # nothing of them before the check
    check = experiment_configs(get_experiment("budget-lr"), profile_base(CPU))
    assert all(not c.evaluate_test and c.eval_size == 0 and c.train_size == CHECK_SIZE for c in check)
    folder = get_experiment("budget-lr").path(CPU, tmp_path)
    lora_rates = sorted({c.lr for c in check if c.method == "lora"})
    assert len(lora_rates) == 3 and lora_rates[1] == profile_base(CPU)("lora", 0).lr
    for config in check:  # every method's best rate: the largest of its three
        best = config.lr == max(c.lr for c in check if c.method == config.method)
        save_result(resolve(config).record("ok", val_accuracy=0.85 if best else 0.8), folder)
    checked = [c for c in _planned(tmp_path) if point_of(c).checked]
    assert len(checked) == len(BUDGET_METHODS) * (3 + 2)
    assert {c.lr for c in checked if c.method == "lora"} == {lora_rates[2]}


def _store(root, config, correct: np.ndarray) -> None:
    run = resolve(config)
    save_result(run.record("ok", accuracy=float(correct.mean()), train_time_s=10.0, train_steps=63,
                           trainable_params=1, total_params=2), root)
    labels = np.arange(len(correct)) % 2
    save_predictions(run.key, np.arange(len(correct)), labels, np.where(correct, labels, 1 - labels),
                     correct * 1.0, root)


def test_the_summary_compares_each_method_with_the_full_ft_of_its_own_budget(tmp_path):
    rng = np.random.default_rng(0)
    base = profile_base(CPU)
    for size, lora_gap in ((500, 0.0), (8000, 0.06)):  # LoRA level with Full FT at 500, 6 points behind at 8000
        for seed in (0, 1, 2):
            for method, accuracy in (("full", 0.85), ("lora", 0.85 - lora_gap)):
                _store(tmp_path, replace(base(method, seed), train_size=size), rng.random(CPU.eval_size) < accuracy)
    table = budget_table(tmp_path)
    assert list(table["point"].unique()) == ["500 reviews", "8000 reviews"]
    lora = table[table["method"] == "lora"].set_index("point")
    assert lora.loc["8000 reviews", "verdict"] == "worse" and lora.loc["500 reviews", "verdict"] != "worse"
    assert lora.loc["8000 reviews", "diff"] == pytest.approx(-0.06, abs=0.02)
    written = write_budget_summary(tmp_path, tmp_path / "no-check", tmp_path / "figures", complete=False)
    assert [p.name for p in written] == ["summary.md", "budget_accuracy.png", "budget_gap.png"]
    summary = written[0].read_text()
    assert "changes with the budget" in summary and "| 8000 reviews | lora |" in summary
    assert "The check is not complete" in summary and "Not every planned run is stored yet" in summary


@pytest.mark.integration
def test_budget_runs_score_the_study_test_reviews_and_their_training_reviews_nest(imdb):
    from peft_imdb.train import draw_reviews

    study = profile_base(CPU)("full", 0)

    tested = draw_reviews(study, imdb)["test"]["review_id"]
    trained = []
    for size in (*SIZES, None):
        drawn = draw_reviews(replace(study, train_size=size), imdb)
        assert drawn["test"]["review_id"] == tested
        trained.append(set(drawn["train"]["review_id"]))
    assert all(small < large for small, large in zip(trained, trained[1:]))  # 500 < ... < 8000 < all
    assert not set(imdb["train"].select(sorted(trained[-1]))["text"]) & set(imdb["test"]["text"])


@pytest.mark.integration
def test_the_nesting_table_draws_each_points_reviews_and_counts_every_training_review(imdb):
    from peft_imdb.data import rows_sharing_test_text

    table = nesting(profile_base(CPU), imdb)
    assert list(table.index) == ["500 reviews", "1000 reviews", "2000 reviews", "reference setting", "4000 reviews",
                                 "8000 reviews", "all reviews"]
    assert list(table["training reviews"])[:-1] == [500, 1000, 2000, 3000, 4000, 8000]
    # every training review less those whose text the test split holds and the study's validation reviews
    every = len(imdb["train"]) - len(rows_sharing_test_text(imdb)) - CPU.val_size
    assert table.loc["all reviews", "training reviews"] == every
    assert set(table["inside the next point's"]) == {"yes"} and set(table["text in the test split"]) == {0}
    assert set(table["test reviews"]) == {"the study's"}


def test_stored_runs_counts_each_points_finished_runs_out_of_its_seeds(tmp_path):
    from conftest import store_ok_row

    base = profile_base(CPU)
    for config in [*POINTS[0].configs(base, (0, 1), ("full",)), *POINTS[-1].configs(base, (0,), ("lora",))]:
        store_ok_row(resolve(config), tmp_path)
    table = stored_runs(tmp_path)
    assert table.loc["500 reviews", "full"] == "2/3" and table.loc["all reviews", "lora"] == "1/2"
    assert table.loc["8000 reviews", "ia3"] == "0/3" and list(table.columns) == list(BUDGET_METHODS)


def test_a_run_scoring_the_remaining_reviews_stores_them_apart_and_agrees_on_the_shared_ones(tiny_models, imdb,
                                                                                           tmp_path):
    from datasets import DatasetDict

    from peft_imdb.results import load_predictions, read_result
    from peft_imdb.runner import train_and_store
    from conftest import tiny_config

    small = DatasetDict(train=imdb["train"].shuffle(seed=0).select(range(400)),
                        test=imdb["test"].shuffle(seed=0).select(range(120)))
    run = resolve(tiny_config(tiny_models["bert"], "lora", score_remaining=True))
    assert run.key != resolve(tiny_config(tiny_models["bert"], "lora")).key
    row = train_and_store(run, tmp_path, small)
    assert row.status == "ok", row.reason
    test, rest = load_predictions(run.key, tmp_path), load_predictions(run.key, tmp_path, "remaining")
    assert len(test) == 16 and len(rest) == row.remaining_reviews == 120  # the whole pool, the subset among it
    shared = rest.set_index("review_id").loc[test["review_id"]]
    assert (shared["predicted"].to_numpy() == test["predicted"].to_numpy()).all()
    assert row.remaining_accuracy == pytest.approx((rest["label"] == rest["predicted"]).mean())
    assert read_result(run.key, tmp_path).remaining_accuracy == row.remaining_accuracy


def test_a_point_begun_on_one_kind_of_machine_waits_for_that_kind(tmp_path):
    from dataclasses import replace as changed

    from peft_imdb.budget import on_one_machine_kind
    from peft_imdb.wall_time import CpuKind

    configs = [c for c in _planned(tmp_path) if c.train_size in (500, 1000)]
    elsewhere = {"device": "cpu", "cpu": {"cpu_model": "Another CPU", "bf16_flags": [], "avx512f": False}}
    first = configs[0]
    save_result(changed(resolve(first).record("ok", val_accuracy=0.8), env=elsewhere), tmp_path)
    here = CpuKind.of({"device": "cpu", "cpu": {"cpu_model": "This CPU", "bf16_flags": ["amx_bf16"], "avx512f": True}})
    kept, lines = on_one_machine_kind(configs, tmp_path, here)
    assert first in kept and not [c for c in kept if c.train_size == 500 and c != first]
    assert len([c for c in kept if c.train_size == 1000]) == len(BUDGET_METHODS) * 3  # a point not begun: any kind
    assert len(lines) == 1 and "500 reviews point trained on Another CPU" in lines[0]
    assert on_one_machine_kind(configs, tmp_path, CpuKind.of(elsewhere))[0] == configs


def test_the_dry_run_plans_the_check_and_every_point_and_writes_nothing(tmp_path, capsys):
    from peft_imdb.cli import main

    assert main(["experiment", "budget", "--profile", "cpu", "--dry-run", "--results-dir", str(tmp_path),
                 "--figures-dir", str(tmp_path / "figures")]) == 0
    out = capsys.readouterr().out
    assert f"plan ({tmp_path / 'sweeps' / 'budget_lr_cpu_validation'}): 24 to train" in out
    assert f"plan ({tmp_path / 'budget'}): 80 to train" in out
    assert "full (train=all epochs=1 L=128)" in out and "full (train=3000 epochs=3 L=256)" in out
    assert "estimated wall time on this machine" in out and not list(tmp_path.rglob("*.json"))
