"""The further methods (OFT, HRA, MiSS, C3A, SHiRA, RoAd, FourierFT, VB-LoRA, LoKr, LN tuning, rsLoRA): each is
built on every tiny family peft supports (skipped with peft's reason elsewhere, and on a peft that lacks it), one
step trains exactly what it should, its formula is the measured count, on MiniLM too; they have a sweep, an
experiment and a Holm family of their own."""

from __future__ import annotations

import pytest

from peft_imdb.config import PROFILES
from peft_imdb.experiments import experiment_configs, get_experiment, profile_base
from peft_imdb.methods import FAMILIES, get_method, method_names
from peft_imdb.params import expected_parameters
from peft_imdb.resolved import resolve
from peft_imdb.runner import train_and_store
from peft_imdb.sweep import final_grid
from peft_imdb.tiny import FAMILIES as ARCHITECTURES

from conftest import builds_trains_what_it_should_and_matches_its_formula, tiny_config

FURTHER = ["oft", "hra", "miss", "c3a", "shira", "road", "fourierft", "vblora", "lokr", "ln_tuning", "lora_rs"]
# GPT-2's fused projections are transformers' Conv1D, for which these peft tuners have no layer.
UNSUPPORTED = {(method, "gpt2"): "Conv1D" for method in ("oft", "hra", "miss", "c3a", "shira", "road", "lokr")}


def _available(method: str) -> bool:
    return get_method(method).unavailable() is None


@pytest.mark.unit
def test_the_further_methods_are_a_family_of_their_own_after_the_others():
    assert method_names(families=("further",)) == FURTHER
    assert method_names()[-len(FURTHER):] == FURTHER  # registry order: after the study's and the added methods
    assert method_names(core_only=True) == ["full", "lora", "qlora", "ia3"]
    assert {get_method(m).family for m in method_names()} == set(FAMILIES)
    for name in FURTHER:
        grid = final_grid(name)
        assert len(grid) >= 4 and get_method(name).learning_rates["cpu"] in grid  # provisional: inside the grid
        assert all(b / a == pytest.approx(2, rel=0.01) for a, b in zip(grid, grid[1:]))  # an octave apart


@pytest.mark.unit
def test_the_first_and_final_sweeps_and_the_added_runs_leave_the_further_methods_out():
    base = profile_base(PROFILES["cpu"])

    def configs(name):
        return experiment_configs(get_experiment(name), base)

    further = set(FURTHER)
    for name in ("lr-sweep-first", "lr-sweep", "more-methods", "study"):
        assert not further & {c.method for c in configs(name)}, name
    sweep = configs("lr-sweep-further")
    assert {c.method for c in sweep} == further and not any(c.evaluate_test for c in sweep)
    assert {c.seed for c in sweep} == {0, 1}
    runs = configs("further-methods")
    assert {(c.method, c.seed) for c in runs} == {(m, s) for m in FURTHER for s in (0, 1, 2)}
    assert {c.lr for c in runs if c.method == "oft"} == {get_method("oft").learning_rates["cpu"]}


@pytest.mark.parametrize("method", FURTHER)
@pytest.mark.parametrize("family", ARCHITECTURES)
def test_builds_trains_what_it_should_and_matches_its_formula(tiny_models, family, method):
    if not _available(method):
        pytest.skip(get_method(method).unavailable())  # the next test checks the skipped record
    builds_trains_what_it_should_and_matches_its_formula(tiny_models, family, method, UNSUPPORTED)


@pytest.mark.parametrize("method", FURTHER)
def test_the_formula_on_minilm_sizes_the_adapter_as_stated(method):
    if not _available(method):
        pytest.skip(get_method(method).unavailable())
    trainable = int(expected_parameters(tiny_config("minilm", method)).loc["trainable (total)", "params"])
    head = 384 * 384 + 384 + 2 * 384 + 2  # the pooler and the classifier, trained in full
    lora = 12 * 8 * (384 + 384)  # LoRA r=8 on query and value of 6 layers
    # Sized as the registry says: as many as LoRA r=8 where it says so, else peft's own size, small beside Full FT.
    if method in ("miss", "shira", "lora_rs"):
        assert trainable - head == lora
    assert 0 < trainable - head < 4 * lora


def test_a_method_the_installed_peft_lacks_is_stored_as_skipped_with_the_reason(tiny_models, imdb, tmp_path,
                                                                                 monkeypatch):
    import peft

    monkeypatch.delattr(peft, "MissConfig", raising=False)
    run = resolve(tiny_config(tiny_models["bert"], "miss"))
    assert run.peft_config is None and "has no MissConfig" in run.unavailable
    row = train_and_store(run, tmp_path, imdb)
    assert row.status == "skipped" and "pip install -U peft" in row.reason
    # A field of the defaults the installed peft lacks (an older OFT, without the Cayley form) reads the same way.
    monkeypatch.setattr("peft_imdb.methods.field_names", lambda cls: set())
    assert "has no OFTConfig field oft_block_size, r, use_cayley_neumann" in get_method("oft").unavailable()


def test_further_runs_wait_for_the_kind_of_machine_the_study_trained_on(tmp_path, capsys):
    from dataclasses import replace as changed

    from peft_imdb.experiments import experiment_request
    from peft_imdb.results import save_result

    profile = PROFILES["cpu"]
    study = experiment_configs(get_experiment("study"), profile_base(profile), (0,))
    elsewhere = {"device": "cpu", "cpu": {"cpu_model": "Another CPU", "bf16_flags": [], "avx512f": False}}
    save_result(changed(resolve(study[0]).record("ok", accuracy=0.8), env=elsewhere), tmp_path)
    configs, _, _ = experiment_request(get_experiment("further-methods"), profile, root=tmp_path)
    assert configs == []  # beside the study's rows, with their times: not from this kind of machine
    err = capsys.readouterr().err
    assert "study of minilm" in err and "trained on Another CPU" in err and "wait for that kind of machine" in err
    # A store whose study trained here, or holds no study at all, plans every run.
    planned = experiment_request(get_experiment("further-methods"), profile, root=tmp_path / "empty")[0]
    assert len(planned) == 3 * len(FURTHER)


def test_each_trains_through_the_trainer_and_stores_an_ok_row_that_counts_as_its_formula(tiny_models, imdb,
                                                                                          tmp_path):
    from peft_imdb.results import read_results

    for method in [m for m in FURTHER if _available(m)]:
        config = tiny_config(tiny_models["bert"], method, train_size=16, eval_size=16, val_size=0)
        row = train_and_store(resolve(config), tmp_path, imdb)
        assert row.status == "ok", f"{method}: {row.reason}"
        assert row.trainable_params == int(expected_parameters(config).loc["trainable (total)", "params"]), method
    assert {r.method for r in read_results(tmp_path)} == {m for m in FURTHER if _available(m)}
