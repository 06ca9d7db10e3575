"""The committed results store, as migrated to the registry's run identity: every record and prediction loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from peft_imdb.config import RunConfig
from peft_imdb.results import load_predictions, read_results

RESULTS = Path(__file__).resolve().parents[1] / "results"
FOLDERS = sorted({p.parent for p in RESULTS.rglob("runs") if p.is_dir()})


@pytest.mark.parametrize("folder", FOLDERS, ids=[str(f.relative_to(RESULTS)) or "." for f in FOLDERS])
def test_every_committed_record_has_the_key_its_config_gives_and_its_predictions(folder):
    records = read_results(folder, keep_aside=False)
    assert records and len(records) == len(list((folder / "runs").glob("*.json")))
    for record in records:
        config = RunConfig.from_dict(record.config)
        assert record.key == config.key() and record.group == config.group()
        assert record.identity == config.identity()
        if record.status == "ok" and (folder / "predictions").is_dir():
            predictions = load_predictions(record.key, folder)
            assert predictions is not None and len(predictions) == record.config["eval_size"]
            assert (predictions["label"] == predictions["predicted"]).mean() == pytest.approx(record.accuracy)


def test_the_study_has_one_row_per_method_with_three_seeds():
    from peft_imdb.report import summarize
    from peft_imdb.results import load_results

    table = summarize(load_results(RESULTS))
    assert list(table["method"]) == ["full", "lora", "qlora", "ia3"] and set(table["n"]) == {3}
    # QLoRA's recipe turned gradient checkpointing on in these runs: the row says so.
    assert table.set_index("method").loc["qlora", "label"] == "qlora (gradient_checkpointing=True)"
