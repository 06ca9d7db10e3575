"""A run that did not learn is flagged by a stated rule; a loss that stops being finite ends the run as failed."""

from __future__ import annotations

import math

import pytest

from peft_imdb.learning import LOSS_MARGIN, RULE, judge


# --- the rule ---------------------------------------------------------------------------------------

def test_a_run_that_learned_passes():
    verdict = judge([0.69, 0.55, 0.41], accuracy=0.81, reviews=2000)
    assert verdict.learned and verdict.reason == ""


def test_accuracy_within_chance_is_flagged_with_its_test():
    verdict = judge([0.69, 0.5], accuracy=33 / 64, reviews=64)
    assert not verdict.learned
    assert "accuracy 0.5156 on 64 test reviews is within chance's 95% interval" in verdict.reason


def test_the_same_accuracy_on_more_reviews_is_above_chance():
    assert judge([0.6], accuracy=0.55, reviews=2000).learned  # p ~ 1e-5: it learned a little
    assert not judge([0.6], accuracy=0.55, reviews=100).learned  # p ~ 0.37: not told apart from guessing


def test_a_loss_near_ln_2_with_accuracy_above_chance_counts_as_learned():
    # Prompt tuning's committed runs: a training loss ~0.72 with dropout, 0.66 on 2000 test reviews.
    assert judge([0.83, 0.72], accuracy=0.66, reviews=2000).learned


def test_a_loss_worse_than_guessing_is_flagged_even_above_chance():
    verdict = judge([0.7, 1790.0], accuracy=0.6, reviews=2000, judged_on="validation")
    assert not verdict.learned and verdict.reason == f"last training loss 1790 is above ln 2 + {LOSS_MARGIN:g}"
    assert judge([0.7, math.log(2) + LOSS_MARGIN - 0.001], accuracy=0.6, reviews=2000).learned


def test_a_loss_that_is_not_finite_is_flagged_and_every_reason_is_given():
    verdict = judge([0.7, float("nan"), 0.69], accuracy=0.5, reviews=64)
    assert not verdict.learned
    assert verdict.reason.startswith("training loss nan is not finite; accuracy 0.5000 on 64 test reviews")


def test_the_rule_states_its_thresholds():
    assert f"ln 2 + {LOSS_MARGIN:g}" in RULE and "95% interval" in RULE and "not finite" in RULE


# --- absurd learning rates on a tiny model ----------------------------------------------------------

def _run(tiny_models, data_dir, out, lr: str, *extra: str) -> list[str]:
    return ["run", "--method", "full", "--model", str(tiny_models["bert"]), "--lr", lr, "--profile", "smoke",
            "--train-size", "32", "--eval-size", "32", "--val-size", "0", "--max-length", "32",
            "--data-dir", str(data_dir), "--results-dir", str(out), *extra]


@pytest.mark.integration
def test_a_run_at_an_absurd_learning_rate_is_flagged_in_its_record_its_line_and_the_summary(tmp_path, tiny_models,
                                                                                             data_dir, capsys):
    from peft_imdb.cli import main
    from peft_imdb.results import read_results

    out = tmp_path / "out"
    assert main(_run(tiny_models, data_dir, out, "50")) == 0
    (row,) = read_results(out)
    assert row.status == "ok" and row.learned is False
    assert "above ln 2" in row.not_learned_reason and "within chance's 95% interval" in row.not_learned_reason
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(f"{row.key}: ok"))
    assert line.endswith(f"DID NOT LEARN: {row.not_learned_reason}")

    assert main(["report", "--results-dir", str(out), "--figures-dir", str(tmp_path / "figures")]) == 0
    summary = (out / "summary.md").read_text()
    assert "## Runs that did not learn" in summary and RULE in summary
    assert f"| full (lr=50) | 0 | {row.accuracy:.4f} | {row.not_learned_reason} |" in summary
    assert "(includes 1 run that did not learn)" in summary


@pytest.mark.integration
def test_a_loss_that_stops_being_finite_stops_training_and_the_run_is_stored_failed(tmp_path, tiny_models, data_dir,
                                                                                    monkeypatch, capsys):
    from peft_imdb import tracking
    from peft_imdb.cli import main
    from peft_imdb.results import read_results

    steps: list[int] = []
    original = tracking.Tracker.callback

    def counting(self):
        callback = original(self)
        callback.on_step_end = lambda args, state, control, **kwargs: steps.append(state.global_step)
        return callback

    monkeypatch.setattr(tracking.Tracker, "callback", counting)
    out = tmp_path / "out"
    assert main(_run(tiny_models, data_dir, out, "1e30", "--train-size", "64", "--epochs", "2")) == 1  # 16 steps
    (row,) = read_results(out)
    assert row.status == "failed" and row.reason.startswith("diverged at step ")
    step = int(row.reason.split()[3].rstrip(":"))
    assert steps == list(range(1, step + 1)) and step < 16  # stopped right there
    assert "not finite" in row.reason and "a smaller --lr" in row.reason
    assert f"{row.key}: failed  diverged at step {step}" in capsys.readouterr().out
    assert not list(out.glob("predictions/*")) and not list(out.glob("checkpoints/*"))


@pytest.mark.integration
def test_a_mean_that_includes_a_run_that_did_not_learn_says_so(tmp_path):
    from peft_imdb.comparison import add_statistics, summarize
    from peft_imdb.report import method_table, not_learned_rows
    from peft_imdb.results import read_results, save_result
    from peft_imdb.table import load_results

    from test_report import fake_run

    for seed in range(3):
        fake_run(tmp_path, "full", seed)
        fake_run(tmp_path, "lora", seed)
    flagged = next(r for r in read_results(tmp_path) if r.method == "lora" and r.seed == 1)
    flagged.learned, flagged.not_learned_reason = False, "accuracy 0.5 on 1000 test reviews is within chance's"
    save_result(flagged, tmp_path)
    frame = load_results(tmp_path)
    table = add_statistics(summarize(frame), tmp_path)
    rows = "\n".join(method_table(table))
    lora = next(line for line in rows.splitlines() if "| lora |" in line)
    full = next(line for line in rows.splitlines() if "| full |" in line)
    assert "(includes 1 run that did not learn)" in lora and "did not learn" not in full
    listed = "\n".join(not_learned_rows(frame))
    assert "| minilm | lora | 1 |" in listed and flagged.not_learned_reason in listed and "| full |" not in listed
