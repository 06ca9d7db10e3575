"""The committed results store: every record has the key its config resolves to, its predictions, and a true
precision reason."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pytest

from peft_imdb.config import RunConfig
from peft_imdb.results import load_predictions, read_results
from peft_imdb.resolved import resolve

RESULTS = Path(__file__).resolve().parents[1] / "results"
FOLDERS = sorted({p.parent for p in RESULTS.rglob("runs") if p.is_dir()})


@pytest.mark.parametrize("folder", FOLDERS, ids=[str(f.relative_to(RESULTS)) or "." for f in FOLDERS])
def test_every_committed_record_has_the_key_its_config_gives_and_its_predictions(folder):
    records = read_results(folder, keep_aside=False)
    assert records and len(records) == len(list((folder / "runs").glob("*.json")))
    for record in records:
        # A key hashes the peft config as the installed peft serializes it: peft < 0.15 has no `modules_to_save`
        # on prompt-learning configs, so prompt tuning's keys are compared under the peft it was trained with.
        if record.method != "prompt_tuning" or record.env["versions"]["peft"] == version("peft"):
            run = resolve(RunConfig.from_dict(record.config))
            assert (record.key, record.group, record.identity) == (run.key, run.group, run.identity)
        # auto resolved it, or the experiment asked for it: a bf16 run says which, never "requested" by default
        if record.precision_mode == "bf16":
            assert record.precision_reason.startswith("auto: "), record.key
        if record.status == "ok" and (folder / "predictions").is_dir():
            predictions = load_predictions(record.key, folder)
            assert predictions is not None and len(predictions) == record.config["eval_size"]
            assert (predictions["label"] == predictions["predicted"]).mean() == pytest.approx(record.accuracy)


def test_the_study_is_five_seeds_of_each_arm_trained_alike_from_clean_commits():
    from peft_imdb.methods import method_family, method_names
    from peft_imdb.comparison import summarize
    from peft_imdb.table import load_results

    table = summarize(load_results(RESULTS))
    core = table[table["method"].isin(method_names(core_only=True))]
    twin = f"lora (lr={core.loc[core['method'] == 'qlora', 'lr'].iloc[0]:g})"  # LoRA with QLoRA's settings
    assert sorted(core["label"]) == sorted(["full", "lora", twin, "qlora", "ia3"]) and set(core["n"]) == {5}
    families = table["method"].map(method_family)
    assert sorted(table.loc[families == "added", "label"]) == sorted(method_names(families=("added",)))  # all six
    for family in ("added", "further"):  # the methods of each other family trained so far: at their defaults, 3+ seeds
        rows = table[families == family]
        assert (rows["label"] == rows["method"]).all() and (rows["n"] >= 3).all(), family
    study = read_results(RESULTS)
    # Today's recipe (every dropout off) on at least 5000 test reviews no earlier study scored.
    scored = [RunConfig.from_dict(r.config) for r in study]
    assert all(not c.dropout and c.test_reviews == "fresh" and c.eval_size >= 5000 for c in scored)
    assert not any(r.gradient_checkpointing for r in study)  # one study-wide setting
    # QLoRA and its twin differ in the 4-bit base alone: their identities agree but for the method.
    qlora_lr = {r.lr for r in study if r.method == "qlora"}
    arms = [r for r in study if r.method == "qlora" or (r.method == "lora" and r.lr in qlora_lr)]
    assert len(arms) == 10 and len({str(sorted((k, str(v)) for k, v in r.identity.items() if k not in ("method", "seed")))
                                    for r in arms}) == 1
    for folder in FOLDERS:  # every committed run names the commit it was trained from, and it was clean
        assert not [r.key for r in read_results(folder, keep_aside=False) if r.env["git_commit"].endswith("+dirty")]
