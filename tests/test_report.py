"""The report on a synthetic store: intervals and p-values present, figures written, output deterministic."""

import numpy as np
import pandas as pd
import pytest

from peft_imdb.plots import pareto_front
from peft_imdb.comparison import add_statistics, summarize
from peft_imdb.config import PROFILES, RunConfig
from peft_imdb.experiments import ablation_tables, get_experiment, write_reports
from peft_imdb.report import advice, write_ablation, write_report
from peft_imdb.results import RunResult, save_predictions, save_result
from peft_imdb.table import load_results
from peft_imdb.resolved import resolve

ACCURACY = {"full": 0.86, "lora": 0.85, "qlora": 0.80, "ia3": 0.78}
ACCURACY_TWIN_LR = 1.234e-3  # a LoRA row whose runs are stored at Full FT's accuracy
MEMORY = {"full": 1400.0, "lora": 1200.0, "qlora": 1000.0, "ia3": 1150.0}
PARAMS = {"full": 22_000_000, "lora": 220_000, "qlora": 220_000, "ia3": 160_000}


def fake_run(root, method: str, seed: int, reviews: int = 1000, **config_overrides) -> RunResult:
    """Store a run with predictions right at the method's accuracy (seeded noise on which reviews)."""
    config = RunConfig(model="minilm", method=method, seed=seed, train_size=100, eval_size=reviews, **config_overrides)
    rng = np.random.default_rng(hash((method, seed, str(config_overrides))) % 2**32)
    labels = np.tile([0, 1], reviews // 2)
    accuracy = ACCURACY.get("full" if config_overrides.get("lr") == ACCURACY_TWIN_LR else method, 0.80)
    accuracy += 0.01 * config_overrides.get("adapter", {}).get("r", 0) / 32
    correct = rng.permutation(np.arange(reviews) < round(accuracy * reviews))
    predicted = np.where(correct, labels, 1 - labels)
    row = RunResult(
        key=resolve(config).key, group=resolve(config).group, identity=resolve(config).identity, model="minilm", method=method, seed=seed, status="ok", config=config.to_dict(),
        accuracy=float(correct.mean()), f1=0.8, trainable_params=PARAMS.get(method, 100_000), adapter_params=0, head_params=0,
        total_params=22_000_000, train_time_s=60.0 + seed, eval_time_s=10.0, peak_memory_mb=MEMORY.get(method, 1100.0) + seed,
        eval_peak_memory_mb=900.0, load_peak_memory_mb=700.0, frozen_weights_mb=80.0,
        trainable_weights_mb=80.0 if method == "full" else 1.0, memory_kind="cpu_rss",
        base_weight_bits=4 if method == "qlora" else 32, saved_mb=1.0, lr=config.learning_rate,
        train_samples_per_s=10.0, eval_samples_per_s=30.0, precision_mode=config.precision, env={"device": "cpu", "versions": {"torch": "x"}},
        finished_at=f"2026-01-01T00:00:{seed:02d}+00:00",
    )
    save_predictions(row.key, np.arange(reviews)[::-1], labels[::-1], predicted[::-1], correct[::-1] * 1.0, root)
    save_result(row, root)
    return row


@pytest.fixture
def store(tmp_path):
    root = tmp_path / "results"
    for method in ACCURACY:
        for seed in range(3):
            fake_run(root, method, seed)
    return root


def test_statistics_and_advice_follow_the_numbers(store):
    table = add_statistics(summarize(load_results(store)), store)
    assert list(table["method"]) == ["full", "lora", "qlora", "ia3"]
    assert table["n"].tolist() == [3, 3, 3, 3]
    assert (table["acc_low"] < table["accuracy_mean"]).all() and (table["accuracy_mean"] < table["acc_high"]).all()
    by_method = table.set_index("method")
    assert np.isnan(by_method.loc["full", "p_value"]) and by_method.loc["full", "verdict"] == ""
    # 1 point down on 3 x 1000 reviews: the interval holds 0 and reaches past the margin, so no verdict.
    assert by_method.loc["lora", "diff_low"] < 0 < by_method.loc["lora", "diff_high"]
    assert by_method.loc["lora", "verdict"] == "inconclusive"
    assert by_method.loc["qlora", "diff_high"] < 0 and by_method.loc["qlora", "p_holm"] < 0.01
    assert set(by_method.loc[["qlora", "ia3"], "verdict"]) == {"worse"}
    assert (by_method.loc[["lora", "qlora", "ia3"], "detectable"] > 0).all()
    text = "\n".join(advice(table))
    assert "lora is *inconclusive*" in text and "qlora is *worse*" in text
    assert "No method is shown equivalent" in text


def test_each_family_of_methods_is_a_holm_family_of_its_own(store):
    study = add_statistics(summarize(load_results(store)), store).set_index("label")
    for seed in range(3):
        for method in ("dora", "vera", "oft", "hra", "road"):  # three further, two added methods
            fake_run(store, method, seed)
    everything = add_statistics(summarize(load_results(store)), store).set_index("label")
    core = ["lora", "qlora", "ia3"]
    # The study's verdicts and adjusted p-values are the same with and without the other families' rows.
    pd.testing.assert_frame_equal(study.loc[core, ["p_value", "p_holm", "verdict"]],
                                  everything.loc[core, ["p_value", "p_holm", "verdict"]])
    # Within a family Holm adjusts over that family's comparisons alone: the smallest p of the three further
    # methods times three (capped at 1), not times the eight comparisons in the table.
    further = everything.loc[["oft", "hra", "road"]]
    smallest = further["p_value"].idxmin()
    assert further.loc[smallest, "p_holm"] == pytest.approx(min(1.0, 3 * further.loc[smallest, "p_value"]))


def test_equivalence_needs_the_interval_inside_the_margin(tmp_path):
    root = tmp_path / "results"
    for seed in range(3):
        fake_run(root, "full", seed, reviews=8000)
        fake_run(root, "lora", seed, reviews=8000, lr=ACCURACY_TWIN_LR)  # a second Full-FT-accurate row
    table = add_statistics(summarize(load_results(root)), root).set_index("label")
    twin = table.loc[f"lora (lr={ACCURACY_TWIN_LR:g})"]
    assert twin["verdict"] == "equivalent" and -0.01 < twin["diff90_low"] < twin["diff90_high"] < 0.01
    text = "\n".join(advice(table.reset_index()))
    assert f"Least model-state memory at Full FT's accuracy: **lora (lr={ACCURACY_TWIN_LR:g})**" in text
    # The same data judged by a margin narrower than its interval is no longer equivalent.
    strict = add_statistics(summarize(load_results(root)), root, margin=0.002).set_index("label")
    assert strict.loc[f"lora (lr={ACCURACY_TWIN_LR:g})", "verdict"] == "inconclusive"


def test_report_writes_every_figure_and_is_deterministic(store, tmp_path):
    for r in (2, 8, 32):
        fake_run(store / "ablations" / "rank", "lora", 0, adapter={"r": r, "lora_alpha": 2 * r})
    figures = tmp_path / "figures"
    first = write_reports(PROFILES["cpu"], store, figures)
    names = {p.name for p in first}
    assert {"summary.md", "accuracy.png", "pareto_memory.png", "pareto_params.png", "pareto_time.png",
            "ablation_rank.png", "model_state_memory.png", "trainable_params.png", "train_time.png"} <= names
    assert "working_memory.png" not in names  # the fake runs predate the working-memory measurement
    assert all(p.stat().st_size > 5000 for p in first if p.suffix == ".png")
    text = (store / "summary.md").read_text()
    assert "95% CI" in text and "Holm p = " in text and "*worse*" in text and "## Ablation: rank" in text
    for method in ACCURACY:
        assert f"| minilm | {method} | 3 | {RunConfig(model='minilm', method=method).learning_rate:.2g} | fp32 |" in text
    write_reports(PROFILES["cpu"], store, figures)
    assert (store / "summary.md").read_text() == text


def test_an_ablation_table_and_figure_need_finished_runs(tmp_path):
    assert ablation_tables(PROFILES["cpu"], tmp_path) == []
    fake_run(tmp_path / "ablations" / "rank", "lora", 0, adapter={"r": 4, "lora_alpha": 8})
    (rank,) = ablation_tables(PROFILES["cpu"], tmp_path)
    assert rank.name == "rank" and list(rank.table["lora_r"]) == [4]
    assert write_ablation(rank, tmp_path).name == "ablation_rank.png"


def test_a_run_differing_in_one_adapter_field_is_its_own_row(store, tmp_path):
    fake_run(store, "lora", 0, adapter={"r": 16})
    fake_run(store, "lora", 0, adapter={"r": 16})  # the same run again: replaces, never a second seed
    table = summarize(load_results(store))
    rows = table.set_index("label")
    assert list(table["label"]) == ["full", "lora", "lora (r=16)", "qlora", "ia3"]
    assert rows.loc["lora", "n"] == 3 and rows.loc["lora (r=16)", "n"] == 1
    assert rows.loc["lora", "accuracy_mean"] == pytest.approx(ACCURACY["lora"], abs=1e-3)
    write_report(store, tmp_path / "figures")
    text = (store / "summary.md").read_text()
    assert "| minilm | lora (r=16) | 1 |" in text and "| minilm | lora | 3 |" in text


@pytest.mark.unit
def test_pareto_front_keeps_only_undominated_points():
    costs = pd.Series([1.0, 2.0, 3.0, 4.0], index=list("abcd"))
    accuracy = pd.Series([0.7, 0.9, 0.8, 0.95], index=list("abcd"))
    assert pareto_front(costs, accuracy) == ["a", "b", "d"]


@pytest.mark.audit
def test_readme_and_docs_tables_are_generated_from_the_committed_results():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, str(root / "scripts" / "update_readme.py"), "--check"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    pages = "\n".join(p.read_text() for p in [root / "README.md", *sorted((root / "docs").glob("*.md"))])
    for block in ("headline", "findings", "study", "picks", "truncation", "dropout", "ablations", "mfu", "profile",
                  "overhead", "scaling"):
        assert f"<!-- begin:{block} -->" in pages and f"<!-- end:{block} -->" in pages
    readme = (root / "README.md").read_text()
    assert "<!-- begin:headline -->" in readme and "<!-- begin:findings -->" in readme


def test_an_empty_store_gives_an_empty_table_and_no_advice(tmp_path):
    table = add_statistics(summarize(load_results(tmp_path)), tmp_path)
    assert table.empty and advice(table) == []
    assert "No finished (`ok`) runs yet." in write_report(tmp_path, tmp_path / "figures")[0].read_text()


def test_an_ablation_compares_each_method_with_its_own_reference_row(tmp_path):
    from peft_imdb.comparison import ablation_table

    folder = tmp_path / "ablations" / "precision"
    for method in ("full", "lora"):
        for precision in ("bf16", "fp32"):
            for seed in range(3):
                fake_run(folder, method, seed, reviews=8000, precision=precision)
    table = ablation_table(folder, "precision_mode", get_experiment("precision").reference)
    table = table.set_index(["method", "precision_mode"])
    for method in ("full", "lora"):
        assert np.isnan(table.loc[(method, "fp32"), "diff"])  # fp32 is the reference
        bf16 = table.loc[(method, "bf16")]
        # Same accuracy in both precisions (random reviews): the difference is near 0, inside ±1 point.
        assert bf16["diff_low"] < 0 < bf16["diff_high"] and abs(bf16["diff"]) < 0.01
        assert -0.01 < bf16["diff90_low"] and bf16["diff90_high"] < 0.01 and bf16["verdict"] == "equivalent"
    # LoRA is compared with LoRA in fp32, never with Full FT (they differ by a point here).
    assert abs(table.loc[("lora", "bf16"), "diff"]) < 0.01


def test_qlora_is_compared_with_its_unquantized_twin(store, tmp_path):
    qlora_lr = RunConfig(model="minilm", method="qlora").learning_rate
    for seed in range(3):
        fake_run(store, "lora", seed, lr=qlora_lr)  # LoRA with QLoRA's settings: 5 points above QLoRA here
    write_report(store, tmp_path / "figures")
    text = (store / "summary.md").read_text()
    line = next(line for line in text.splitlines() if line.startswith(f"- **qlora − lora (lr={qlora_lr:g})**"))
    assert "(the 4-bit base alone, 3 and 3 seeds): -5.0 points" in line and "*worse*" in line
    assert "training 61 vs 61 s" in line  # the costs of both sides (train time 60 + seed s in the fake runs)
