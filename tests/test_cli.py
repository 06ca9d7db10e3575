"""The CLI: one-line errors with exit code 2, matrix skips finished runs, report writes charts."""

from __future__ import annotations

import subprocess
import sys

import pytest

from peft_imdb.cli import main
from peft_imdb.table import load_results
from peft_imdb.resolved import resolve


def _cli(*args, env_data=None):
    return subprocess.run([sys.executable, "-m", "peft_imdb", *args], capture_output=True, text=True, timeout=300)


def test_unknown_method_is_one_line_exit_2():
    proc = _cli("run", "--method", "nope")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and all(m in lines[0] for m in ("full", "lora", "qlora", "ia3"))


def test_missing_data_folder_names_the_fix(tmp_path):
    proc = _cli("run", "--method", "full", "--data-dir", str(tmp_path / "missing"), "--results-dir", str(tmp_path))
    assert proc.returncode == 2 and "PEFT_IMDB_DATA" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_unknown_model_is_a_clear_error(tmp_path, data_dir):
    code = main(["run", "--method", "lora", "--model", str(tmp_path / "no-such-model"), "--data-dir", str(data_dir),
                 "--results-dir", str(tmp_path)])
    assert code == 2 and not (tmp_path / "runs").exists()


def test_too_large_sizes_are_a_clear_error(tmp_path, data_dir, tiny_models, capsys):
    code = main(["run", "--method", "full", "--model", str(tiny_models["bert"]), "--data-dir", str(data_dir),
                 "--train-size", "30000", "--results-dir", str(tmp_path)])
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and line.startswith("error: the train split less the 123 reviews whose text the test split "
                                         "holds has 12405 reviews of label 0 (negative), but --train-size 30000 "
                                         "takes 15000") and "use a smaller --train-size" in line


@pytest.mark.system
def test_matrix_skips_finished_runs_and_report_draws(tmp_path, data_dir, tiny_models):
    args = ["matrix", "--model", str(tiny_models["bert"]), "--methods", "full", "lora", "--seeds", "0", "1",
            "--data-dir", str(data_dir), "--results-dir", str(tmp_path), "--profile", "smoke",
            "--train-size", "16", "--eval-size", "16", "--val-size", "0", "--max-length", "32"]
    assert main(args) == 0  # each run in its own process
    first = load_results(tmp_path)
    assert len(first) == 4 and set(first["status"]) == {"ok"}
    # Re-running one method: still four rows, and finished ones are not re-trained.
    assert main(args[:4] + ["lora"] + args[5:]) == 0
    assert load_results(tmp_path)["finished_at"].tolist() == first["finished_at"].tolist()
    assert main(args[:4] + ["lora"] + args[5:] + ["--force", "--in-process"]) == 0
    assert len(load_results(tmp_path)) == 4

    figures = tmp_path / "figures"
    assert main(["report", "--results-dir", str(tmp_path), "--figures-dir", str(figures)]) == 0
    assert sorted(p.name for p in figures.glob("*.png")) == [
        "accuracy.png", "confusion.png", "headline.png", "loss_curves.png", "model_state_memory.png",
        "pareto_memory.png", "pareto_params.png", "pareto_time.png", "train_time.png", "trainable_params.png",
        "working_memory.png"]
    summary = (tmp_path / "summary.md").read_text()
    assert "| full |" in summary and "| lora |" in summary and "± " in summary


def test_qlora_without_nf4_is_skipped_not_crashed(tmp_path, data_dir, tiny_models, monkeypatch):
    import peft_imdb.hardware as hardware

    monkeypatch.setattr(hardware, "nf4_support", lambda: (False, "bitsandbytes cannot run NF4 on cpu: test"))
    args = ["matrix", "--model", str(tiny_models["bert"]), "--methods", "qlora", "full", "--seeds", "0", "--data-dir", str(data_dir),
            "--results-dir", str(tmp_path), "--profile", "smoke", "--train-size", "16", "--eval-size", "16",
            "--in-process"]  # the patch above lives in this process
    assert main(args) == 0
    rows = load_results(tmp_path).set_index("method")
    assert rows.loc["qlora", "status"] == "skipped" and "NF4" in rows.loc["qlora", "reason"]
    assert rows.loc["full", "status"] == "ok"



@pytest.mark.unit
def test_dropout_on_is_its_own_run_beside_the_default_without_dropout():
    from peft_imdb.cli import _configs, build_parser
    from peft_imdb.resolved import recipe_text

    def config(*flags):
        args = build_parser().parse_args(["run", "--method", "lora", "--profile", "smoke", *flags])
        return _configs(args, [], ["lora"], [0])[0]

    plain, on = config(), config("--dropout")
    assert not plain.dropout and on.dropout
    assert resolve(plain).identity["dropout"] is False and "dropout" not in resolve(on).identity
    assert resolve(on).key != resolve(plain).key and resolve(on).label == "lora"  # a table shows it in `recipe`:
    assert recipe_text(on.to_dict()) == "dropout on" and recipe_text(plain.to_dict()) == ""
