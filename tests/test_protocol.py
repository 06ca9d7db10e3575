"""The study's protocol: tuning never sees the test set, and the QLoRA/LoRA comparison differs by the 4-bit base alone."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from peft_imdb.config import PROFILES, RunConfig
from peft_imdb.data import make_splits, without_test_texts
from peft_imdb.errors import UserError
from peft_imdb.methods import METHODS, method_names
from peft_imdb.plan import with_control_arms
from peft_imdb.results import read_results
from peft_imdb.experiments import get_experiment
from peft_imdb.sweep import CHOICES, FIRST_ROUND_TABLE, LEARNED, SEEDS, picks, sweep_configs, sweep_table
from peft_imdb.resolved import resolve

from conftest import tiny_config

RESULTS = Path(__file__).resolve().parents[1] / "results"


@pytest.mark.integration
def test_a_tuning_run_never_draws_scores_or_stores_a_test_review(tiny_models, imdb, tmp_path, monkeypatch):
    import peft_imdb.results as results
    from transformers import Trainer

    from peft_imdb.runner import train_and_store

    def forbidden(*args, **kwargs):
        raise AssertionError("tuning touched the test set")

    monkeypatch.setattr(Trainer, "predict", forbidden)  # the only way a run scores its test subset
    monkeypatch.setattr(results, "load_predictions", forbidden)
    config = tiny_config(tiny_models["bert"], "lora", eval_size=0, evaluate_test=False, val_size=16)
    row = train_and_store(resolve(config), tmp_path, imdb)
    assert row.status == "ok", row.reason
    assert row.accuracy is None and row.val_accuracy is not None and row.confusion_matrix is None
    assert not (tmp_path / "predictions").exists()


@pytest.mark.integration
def test_tuning_reviews_exclude_every_test_text(imdb):
    tuning = without_test_texts(imdb)
    assert list(tuning) == ["train"]
    test_texts = set(imdb["test"]["text"])
    assert not test_texts & set(tuning["train"]["text"])
    assert len(imdb["train"]) - len(tuning["train"]) >= 123  # IMDb repeats 123 test texts in train
    splits = make_splits(tuning, 200, 0, 100, 42)
    assert set(splits) == {"train", "validation"}


def test_a_tuning_config_must_not_ask_for_test_reviews():
    with pytest.raises(UserError, match="--eval-size 0"):
        RunConfig(model="minilm", method="lora", evaluate_test=False, eval_size=100)
    sweep = sweep_configs([RunConfig.from_profile(PROFILES["cpu"], m, lr_table=FIRST_ROUND_TABLE)
                           for m in method_names(True)])
    assert sweep and all(c.eval_size == 0 and not c.evaluate_test for c in sweep)
    assert {c.lr for c in sweep if c.method == "lora"} == set(METHODS["lora"].lr_grid[FIRST_ROUND_TABLE])


def test_the_pick_rule_prefers_the_best_rate_at_which_every_seed_learned():
    import pandas as pd

    table = pd.DataFrame([
        {"method": "lora", "lr": 1e-3, "seeds": 2, "val_mean": 0.80, "val_min": 0.79},
        {"method": "lora", "lr": 2e-3, "seeds": 2, "val_mean": 0.83, "val_min": 0.82},
        {"method": "lora", "lr": 4e-3, "seeds": 2, "val_mean": 0.84, "val_min": LEARNED - 0.1},  # one seed failed
        {"method": "lora", "lr": 8e-3, "seeds": 2, "val_mean": 0.50, "val_min": 0.50},
    ])
    pick = picks(table)["lora"]
    assert pick.lr == 2e-3 and pick.interior
    assert not picks(table[table["lr"] >= 2e-3])["lora"].interior  # the best at the grid's end is flagged


def _seeded(method: str, rates: dict[float, tuple[float, ...]]):
    """A sweep table from each rate's validation accuracy per seed (0, 1, ...)."""
    import pandas as pd

    return pd.DataFrame([{"method": method, "lr": lr, "seeds": len(acc), "val_mean": sum(acc) / len(acc),
                          "val_min": min(acc), "by_seed": dict(enumerate(acc))} for lr, acc in rates.items()])


def test_a_near_tie_goes_to_the_rate_whose_worst_seed_is_highest_and_a_clear_lead_stands():
    # 2e-3 leads 1e-3 by 0.5 points on average but its seeds disagree: the lead is within their noise.
    noisy = _seeded("lora", {5e-4: (0.80, 0.80, 0.81), 1e-3: (0.830, 0.832, 0.828), 2e-3: (0.86, 0.80, 0.845),
                             4e-3: (0.70, 0.72, 0.71)})
    assert picks(noisy)["lora"].lr == 2e-3  # the first sweep's rule: the best mean
    assert picks(noisy, near_tie=True)["lora"].lr == 1e-3  # tied; 1e-3's worst seed (0.828) beats 2e-3's (0.80)
    # The same lead, every seed agreeing: not a tie.
    clear = _seeded("lora", {5e-4: (0.80, 0.80, 0.81), 1e-3: (0.830, 0.832, 0.828), 2e-3: (0.836, 0.837, 0.832),
                             4e-3: (0.70, 0.72, 0.71)})
    assert picks(clear, near_tie=True)["lora"].lr == 2e-3 and picks(clear, near_tie=True)["lora"].interior


def test_the_final_sweep_centres_its_grid_on_the_first_picks_at_the_study_recipe_and_widens_at_an_end(tmp_path):
    from peft_imdb.experiments import get_experiment, experiment_configs, profile_base
    from peft_imdb.results import save_result
    from peft_imdb.sweep import FIRST_ROUND_TABLE, MAX_WIDENINGS, widened

    configs = experiment_configs(get_experiment("lr-sweep"), profile_base(PROFILES["cpu"]))
    lora = [c for c in configs if c.method == "lora"]
    first = METHODS["lora"].learning_rates[FIRST_ROUND_TABLE]
    assert sorted({c.lr for c in lora}) == pytest.approx([first / 2, first / 2 ** 0.5, first, first * 2 ** 0.5,
                                                          first * 2], rel=1e-2)  # half-octave steps, 5 rates
    assert {c.seed for c in lora} == {0, 1, 2} and {c.seed for c in configs if c.method == "dora"} == {0, 1}
    assert len({c.lr for c in configs if c.method == "dora"}) == 3
    assert all(not c.evaluate_test and c.eval_size == 0 and c.precision == PROFILES["cpu"].precision
               and not c.dropout and c.sampler == "nested" for c in configs)  # the study's recipe, no test review

    def store(runs, accuracy):
        for config in runs:
            save_result(resolve(config).record("ok", val_accuracy=accuracy(config.lr)), tmp_path)

    store(lora[:-1], lambda lr: 0.6 + lr)  # the highest rate is best: the pick is at the grid's top
    assert not widened(tmp_path, lora)  # not before every planned run of the method is stored
    store(lora[-1:], lambda lr: 0.6 + lr)
    more = widened(tmp_path, lora)
    assert {c.seed for c in more} == {0, 1, 2} and [c.lr for c in more] == pytest.approx([first * 2 ** 1.5] * 3, rel=1e-2)
    store(more, lambda lr: 0.6 + lr)  # the widened rate is best again: a sweep run again later widens on
    assert [c.lr for c in widened(tmp_path, lora)] == pytest.approx([first * 2 ** 2] * 3, rel=1e-2)
    more = widened(tmp_path, lora + more)
    for _ in range(MAX_WIDENINGS):
        store(more, lambda lr: 0.6 + lr)
        lora, more = lora + more, widened(tmp_path, lora + more)
    assert not more  # widened at most MAX_WIDENINGS times
    store([c for c in lora if c.lr == first], lambda lr: 0.9)  # now the centre is best: inside the grid
    assert not widened(tmp_path, lora)


def test_a_partial_sweep_names_and_draws_no_pick_until_every_run_is_stored(tmp_path, monkeypatch):
    import peft_imdb.plots as plots
    from peft_imdb.results import save_result
    from peft_imdb.sweep import write_sweep_chart, write_sweep_summary

    drawn = []
    monkeypatch.setattr(plots, "sweep_chart", lambda table, picked, path, *_: drawn.append(picked) or path)
    runs = [RunConfig.from_profile(PROFILES["cpu"], "lora", lr=lr, seed=seed, eval_size=0, evaluate_test=False)
            for lr in (5e-4, 1e-3) for seed in (0, 1)]
    for config in runs[:3]:
        save_result(resolve(config).record("ok", val_accuracy=0.7 + config.lr), tmp_path)
    assert write_sweep_summary(tmp_path, complete=False) == [tmp_path / "summary.md"]
    write_sweep_chart(tmp_path, tmp_path)
    assert drawn.pop() == {} and "**pick**" not in (tmp_path / "summary.md").read_text()
    save_result(resolve(runs[3]).record("ok", val_accuracy=0.7 + runs[3].lr), tmp_path)
    write_sweep_summary(tmp_path, complete=True)
    write_sweep_chart(tmp_path, tmp_path)
    assert drawn.pop() == {"lora": 1e-3} and "**pick**" in (tmp_path / "summary.md").read_text()


def test_qlora_gets_a_lora_arm_with_exactly_its_settings():
    qlora = RunConfig.from_profile(PROFILES["cpu"], "qlora", lr=1.5e-3, gradient_checkpointing=True)
    configs = with_control_arms([RunConfig.from_profile(PROFILES["cpu"], "lora"), qlora])
    (arm,) = [c for c in configs[2:]]
    assert arm.method == "lora" and replace(arm, method="qlora") == qlora
    # At the same settings as a LoRA run, the arm is that run: one key, trained once.
    assert resolve(with_control_arms([RunConfig.from_profile(PROFILES["cpu"], "qlora", lr=1e-3)])[1]).key == \
        resolve(RunConfig.from_profile(PROFILES["cpu"], "lora", lr=1e-3)).key


VALIDATION_SWEEPS = sorted((RESULTS / "sweeps").glob("*_validation"))


def _draw(config: dict) -> tuple:
    """The settings that decide which reviews a stored run saw: sizes, data seed, sampler, test draw."""
    config = RunConfig.from_dict(config)
    return (config.train_size, config.eval_size, config.val_size, config.data_seed, config.sampler,
            config.test_reviews)


@pytest.mark.audit
@pytest.mark.skipif(not VALIDATION_SWEEPS, reason="no validation sweep committed yet")
def test_committed_sweeps_saw_no_study_test_review_and_chose_the_registry_rates(imdb):
    study = [r for r in read_results(RESULTS) if r.status == "ok"]
    test_texts = set()
    for draw in {_draw(r.config) for r in study}:  # the reviews a run saw depend on these settings alone
        train_size, eval_size, val_size, data_seed, sampler, test_reviews = draw
        test_texts |= set(make_splits(imdb, train_size, eval_size, val_size, data_seed, sampler,
                                      test_reviews)["test"]["text"])
    tuning = without_test_texts(imdb)
    for folder in VALIDATION_SWEEPS:
        runs = read_results(folder)
        assert runs and all(r.accuracy is None and not r.config["evaluate_test"] for r in runs)
        assert not (folder / "predictions").exists()
        for train_size, _, val_size, data_seed, sampler, _ in {_draw(r.config) for r in runs}:
            splits = make_splits(tuning, train_size, 0, val_size, data_seed, sampler)
            assert not test_texts & (set(splits["train"]["text"]) | set(splits["validation"]["text"]))
    # Each learning-rate sweep's picks, by its own rule, are the registry's rates of one table.
    for name, table, near_tie in (("lr-sweep-first", FIRST_ROUND_TABLE, False), ("lr-sweep", "cpu", True),
                                  ("lr-sweep-further", "cpu", True)):
        folder = get_experiment(name).path(PROFILES["cpu"], RESULTS)
        if not (folder / "picks.json").is_file():
            continue  # a sweep still under way (it writes its picks when every run is stored)
        chosen = json.loads((folder / "picks.json").read_text())
        assert chosen == {m: asdict(p) for m, p in picks(sweep_table(folder), near_tie).items()}  # re-applied
        for method, pick in chosen.items():
            assert METHODS[method].learning_rates[table] == pick["lr"], f"{method}: registry lr is not the sweep's pick"


def test_truncation_rule_keeps_head_tail_unless_head_is_higher_on_average_over_methods():
    import pandas as pd

    # Per method first: a gains 2 points with head, b loses 1.5; over the methods head is 0.25 higher.
    table = pd.DataFrame({"method": ["a", "a", "b", "b"], "default": [0.80] * 4, "alternative": [0.83, 0.81, 0.78, 0.79]})
    assert CHOICES["truncation"].chooses_alternative(table)
    table["alternative"] = [0.81, 0.80, 0.78, 0.79]  # a +0.5, b -1.5: head+tail stays
    assert not CHOICES["truncation"].chooses_alternative(table)


def test_dropout_rule_turns_dropout_off_unless_it_loses_half_a_point_or_more():
    import pandas as pd

    table = pd.DataFrame({"method": ["a", "a", "b", "b"], "default": [0.80] * 4, "alternative": [0.80, 0.79, 0.80, 0.80]})
    assert CHOICES["dropout"].chooses_alternative(table)  # -0.25 points: a near-tie goes to the faster arm
    table["alternative"] = [0.80, 0.79, 0.79, 0.80]  # -0.5 points (a float a hair below): dropout stays on
    assert not CHOICES["dropout"].chooses_alternative(table)
    table["alternative"] = [0.81, 0.79, 0.79, 0.80]  # -0.25 points again, the other way round per method
    assert CHOICES["dropout"].chooses_alternative(table)


def test_each_choice_arm_differs_from_the_sweeps_run_in_its_setting_alone():
    profile = PROFILES["cpu"]
    for choice in CHOICES.values():
        arms = choice.arms(RunConfig.from_profile(profile, "lora", seed=1))
        assert resolve(arms["default"]).key != resolve(arms["alternative"]).key
        assert replace(arms["alternative"], **{choice.setting: getattr(arms["default"], choice.setting)}) == arms["default"]
        assert not arms["alternative"].evaluate_test and arms["alternative"].eval_size == 0  # tuning: no test review


@pytest.mark.audit
@pytest.mark.parametrize("name", list(CHOICES))
def test_a_committed_choice_is_complete_and_the_default_follows_it_unless_its_summary_says_not_yet(name):
    choice, profile = CHOICES[name], PROFILES["cpu"]
    folder = get_experiment(name).path(profile, RESULTS)
    if not (folder / "summary.md").is_file():
        pytest.skip(f"no {name} comparison committed yet")
    arms = [choice.arms(RunConfig.from_profile(profile, m, seed=s)) for m in method_names(core_only=True) for s in SEEDS]
    table = choice.table(arms, get_experiment("lr-sweep-first").path(profile, RESULTS), folder)
    assert len(table) == 8 and not table.isna().any().any()  # every arm of both settings is stored
    chosen = choice.alternative if choice.chooses_alternative(table) else getattr(arms[0]["default"], choice.setting)
    summary = (folder / "summary.md").read_text()
    assert f"Choice: **{choice.labels[chosen == choice.alternative]}**" in summary
    if "Not yet the default" not in summary:
        assert chosen == getattr(RunConfig.from_profile(profile, "full"), choice.setting)
