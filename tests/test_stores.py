"""Own runs apart: `run`, the notebooks and the smoke profile write to the git-ignored scratch store; only the
study's commands write results/ and figures/, unless a folder is named."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from peft_imdb.cli import _default_folders, build_parser, main
from peft_imdb.folders import folders
from peft_imdb.results import read_results

REPO = Path(__file__).resolve().parents[1]


def _folders(*argv: str) -> tuple[str, str | None]:
    args = build_parser().parse_args(list(argv))
    _default_folders(args)
    return args.results_dir, getattr(args, "figures_dir", None)


@pytest.fixture
def no_folder_settings(monkeypatch):
    monkeypatch.delenv("PEFT_IMDB_RESULTS", raising=False)
    monkeypatch.delenv("PEFT_IMDB_FIGURES", raising=False)


@pytest.mark.parametrize("argv, results, figures", [
    (["run", "--method", "lora", "--profile", "cpu"], "results-scratch", None),
    (["run", "--method", "lora", "--profile", "colab-t4"], "results-scratch", None),
    (["matrix", "--profile", "cpu"], "results", None),
    (["matrix", "--profile", "smoke"], "results-scratch", None),
    (["experiment", "study", "--profile", "cpu"], "results", "figures"),
    (["experiment", "rank", "--profile", "smoke"], "results-scratch", "results-scratch/figures"),
    (["ablation", "rank", "--profile", "colab-t4"], "results", "figures"),
    (["sweep", "--profile", "smoke"], "results-scratch", "results-scratch/figures"),
    (["run", "--method", "lora", "--profile", "smoke", "--results-dir", "results"], "results", None),
    (["experiment", "study", "--profile", "cpu", "--results-dir", "mine", "--figures-dir", "pics"], "mine", "pics"),
])
def test_each_command_writes_its_store_unless_a_folder_is_named(argv, results, figures, no_folder_settings):
    assert _folders(*argv) == (results, figures)


def test_the_folder_settings_win_over_every_store(monkeypatch):
    monkeypatch.setenv("PEFT_IMDB_RESULTS", "/drive/results")
    monkeypatch.setenv("PEFT_IMDB_FIGURES", "/drive/figures")
    assert _folders("run", "--method", "lora", "--profile", "cpu") == ("/drive/results", None)
    assert _folders("experiment", "study", "--profile", "cpu") == ("/drive/results", "/drive/figures")


def test_notebooks_write_the_scratch_store_and_read_the_committed_study(no_folder_settings, monkeypatch):
    monkeypatch.chdir(REPO / "notebooks")
    paths = folders()
    assert (paths.results_dir, paths.figures_dir) == (REPO / "results-scratch", REPO / "results-scratch" / "figures")
    assert (paths.study_dir, paths.study_figures_dir) == (REPO / "results", REPO / "figures")
    monkeypatch.setenv("PEFT_IMDB_RESULTS", "/content/drive/MyDrive/peft-imdb/results")  # Drive, on Colab
    assert folders().results_dir == Path("/content/drive/MyDrive/peft-imdb/results")
    assert folders().study_dir == REPO / "results"  # the study is the clone's, whatever the setting


def test_the_scratch_store_is_ignored_by_git():
    import subprocess

    for path in ("results-scratch/runs/x.json", "results-scratch/figures/accuracy.png",
                 "notebooks/results-scratch/runs/x.json"):
        done = subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO)
        assert done.returncode == 0, f"{path} is not git-ignored"
    assert subprocess.run(["git", "check-ignore", "-q", "results/runs/x.json"], cwd=REPO).returncode == 1


@pytest.mark.integration
def test_run_and_the_smoke_profile_store_apart_and_the_study_in_results(tmp_path, monkeypatch, no_folder_settings,
                                                                        data_dir, fake_runs):
    monkeypatch.chdir(tmp_path)
    data = ["--data-dir", str(data_dir)]
    assert main(["run", "--method", "lora", "--profile", "cpu", *data]) == 0
    assert main(["matrix", "--methods", "full", "--seeds", "0", "--profile", "smoke", "--in-process", *data]) == 0
    assert not (tmp_path / "results").exists()
    assert {(r.method, r.config["train_size"]) for r in read_results(tmp_path / "results-scratch")} == {
        ("lora", 2000), ("full", 64)}
    assert main(["matrix", "--methods", "full", "--seeds", "0", "--profile", "cpu", "--in-process", *data]) == 0
    assert main(["run", "--method", "ia3", "--profile", "cpu", "--results-dir", "results", *data]) == 0
    assert sorted(r.method for r in read_results(tmp_path / "results")) == ["full", "ia3"]
    assert len(fake_runs) == 4 and sorted(os.listdir(tmp_path)) == ["results", "results-scratch"]
