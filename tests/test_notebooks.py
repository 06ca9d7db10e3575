"""The notebooks: each .ipynb in step with its .py twin, committed with clean outputs, and each one run
top to bottom on the smoke profile, checked by what it produces (rows, figures, outputs), not by its cells."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest
from jupytext.config import load_jupytext_config

from peft_imdb.config import PROFILES
from peft_imdb.execution import execute, execute_notebook, notebook_paths
from peft_imdb.plan import load_or_train
from peft_imdb.plots import CHARTS
from peft_imdb.report import RULES
from peft_imdb.results import RunResult, read_result, save_result
from peft_imdb.experiments import ablations, experiment_configs, profile_base
from peft_imdb.resolved import resolve

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = REPO / "notebooks"
NOTEBOOKS = [path.stem for path in notebook_paths()]
METHOD_NOTEBOOKS = {"01_full_finetuning": "full", "02_lora": "lora", "03_qlora": "qlora", "04_ia3": "ia3"}
TRAINS = set(METHOD_NOTEBOOKS) | {"06_ablations"}  # on a new profile; 00 and 05 never train
REPORT_CHARTS = {chart[3] for chart in CHARTS} | {"headline.png", "confusion.png", "accuracy.png", "trainable_params.png",
                                                  "loss_curves.png",
                                                  "pareto_memory.png", "pareto_params.png", "pareto_time.png"}
# The methods whose study run (seed 0, the default config: rank 8, the default placement, lr factor 1) is
# one of each ablation's runs: copied from the study's store, not trained. Only `ok` runs are copied.
STUDY_RUNS_IN = {"rank": {"lora"}, "targets": {"lora", "ia3"}, "precision": {"full", "lora", "qlora", "ia3"}}
# What a committed output must not hold: a path of the machine it ran on, a warning, a traceback.
MACHINE_PATH = re.compile(r"(?<![\w.])/(?:work|home|tmp|root|Users|content)/|[A-Za-z]:\\\\")
WARNING = re.compile(r"Warning\b|warnings\.warn|deprecated|Traceback", re.IGNORECASE)


def _path(name: str) -> Path:
    return NOTEBOOKS_DIR / f"{name}.ipynb"


def _read(name: str):
    return nbformat.read(_path(name), as_version=4)


def _cells(notebook) -> list[tuple[str, str]]:
    return [(cell["cell_type"], cell["source"]) for cell in notebook["cells"]]


def _outputs(notebook) -> list[dict]:
    return [output for cell in notebook["cells"] if cell["cell_type"] == "code" for output in cell["outputs"]]


def _text(notebook) -> str:
    return json.dumps(_outputs(notebook), ensure_ascii=False)


def _stderr(notebook) -> list[str]:
    return ["".join(o["text"]) for o in _outputs(notebook) if o["output_type"] == "stream" and o["name"] == "stderr"]


# --- the files: cheap, no kernel -----------------------------------------------------------------


@pytest.mark.audit
def test_notebooks_are_found_in_reading_order():
    assert NOTEBOOKS == ["00_setup_and_data", "01_full_finetuning", "02_lora", "03_qlora", "04_ia3", "05_compare",
                         "06_ablations", "07_more_methods", "08_budget"]


@pytest.mark.audit
def test_each_notebook_is_paired_with_its_py_twin_and_in_sync():
    """notebooks/jupytext.toml pairs every .ipynb with a percent-format .py; their cells must be the same."""
    assert load_jupytext_config(str(NOTEBOOKS_DIR)).formats == ["ipynb,py:percent"]
    assert sorted(p.stem for p in NOTEBOOKS_DIR.glob("[0-9][0-9]_*.py")) == NOTEBOOKS
    for name in NOTEBOOKS:
        twin = jupytext.read(NOTEBOOKS_DIR / f"{name}.py")
        assert _cells(_read(name)) == _cells(twin), (
            f"{name}.ipynb and {name}.py differ: run `.venv/bin/jupytext --sync notebooks/{name}.ipynb`, "
            "then re-execute it (scripts/execute_notebooks.py)")


@pytest.mark.audit
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_is_valid_with_a_python3_kernel(name):
    notebook = _read(name)
    nbformat.validate(notebook)
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    # Colab opens the notebooks that can train on a GPU runtime (the colab-t4 profile); 00 too, to show it.
    if name in TRAINS or name == "00_setup_and_data":
        assert notebook["metadata"].get("accelerator") == "GPU", f"{name} would open on a CPU runtime"


@pytest.mark.audit
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_outputs_are_complete_and_clean(name):
    """The committed outputs are what readers see: every code cell ran, nothing failed, warned or names this machine."""
    notebook = _read(name)
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert all(cell["execution_count"] for cell in code), f"{name}: run scripts/execute_notebooks.py"
    assert not [o for o in _outputs(notebook) if o["output_type"] == "error"], name
    assert not _stderr(notebook), f"{name} has stderr output: {_stderr(notebook)[:1]}"
    text = _text(notebook)
    assert not MACHINE_PATH.search(text), f"{name}: {MACHINE_PATH.search(text).group()!r} in an output"
    assert not WARNING.search(text), f"{name}: {text[WARNING.search(text).start():][:200]!r}"
    assert all("execution" not in cell["metadata"] for cell in code), "no timing metadata: it churns every run"


@pytest.mark.audit
def test_readme_lists_every_notebook_in_order_with_a_colab_badge():
    lines = [line for line in (NOTEBOOKS_DIR / "README.md").read_text().splitlines() if ".ipynb" in line
             and "colab-badge" in line]
    assert [next(n for n in NOTEBOOKS if f"{n}.ipynb" in line) for line in lines] == NOTEBOOKS


# --- execution: a real kernel, the smoke profile ------------------------------------------------


@pytest.fixture(scope="module")
def smoke_env(tmp_path_factory, data_dir):
    """Environment the kernels inherit: smoke profile, real data, a tmp store and figures folder."""
    root = tmp_path_factory.mktemp("notebooks")
    patch = pytest.MonkeyPatch()
    settings = {
        "PEFT_IMDB_PROFILE": "smoke",
        "PEFT_IMDB_DATA": str(data_dir),
        "PEFT_IMDB_RESULTS": str(root / "results"),
        "PEFT_IMDB_FIGURES": str(root / "figures"),
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    for key, value in settings.items():
        patch.setenv(key, value)
    # Smoke runs are tiny: one torch thread per kernel keeps them fast on a busy machine (with two
    # threads beside another job on 2 cores, a smoke notebook took 4x longer), and costs little idle.
    patch.setenv("OMP_NUM_THREADS", "1")
    yield {"root": root, "results": root / "results", "figures": root / "figures", "data": data_dir}
    patch.undo()


def _run_records(results: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((results / "runs").glob("*.json"))]


@pytest.fixture(scope="module")
def executed(smoke_env):
    """Executes notebooks on demand, in order (05 reads what 01-04 stored), each once per module.

    `stores[name]` holds the run keys in the store after notebook `name` ran.
    """
    done: dict = {}
    stores: dict = {}
    before = {name: _path(name).read_bytes() for name in NOTEBOOKS}

    def run(name: str):
        for earlier in NOTEBOOKS[: NOTEBOOKS.index(name) + 1]:
            if earlier not in done:
                done[earlier] = execute(_path(earlier), timeout_s=300)
                stores[earlier] = [r["key"] for r in _run_records(smoke_env["results"])]
        return done[name]

    run.stores = stores
    yield run
    # Execution happens on in-memory copies: the committed files never get outputs from the tests.
    assert {name: _path(name).read_bytes() for name in NOTEBOOKS} == before


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_top_to_bottom_on_smoke(name, executed, smoke_env):
    notebook = executed(name)  # nbclient raises CellExecutionError on the first failing cell
    assert not [o for o in _outputs(notebook) if o["output_type"] == "error"]
    assert all(c["execution_count"] for c in notebook["cells"] if c["cell_type"] == "code"), "every code cell ran"
    assert not _stderr(notebook), f"warnings or other stderr output: {_stderr(notebook)[:2]}"
    text = _text(notebook)
    assert "smoke" in text and not WARNING.search(text)
    if name == "00_setup_and_data":
        assert (smoke_env["figures"] / "review_lengths.png").is_file()
        assert "share truncated at 256" in text and "share truncated at 512" in text
        assert "image/png" in text
    if name in METHOD_NOTEBOOKS:
        method = METHOD_NOTEBOOKS[name]
        records = [r for r in _run_records(smoke_env["results"]) if r["method"] == method]
        assert len(records) == 1
        assert records[0]["status"] in (("ok", "skipped") if method == "qlora" else ("ok",)), records[0]["reason"]
        if records[0]["status"] == "ok":
            assert records[0]["config"]["train_size"] == 64  # the smoke profile's size
            # The count the notebook shows on the model it built (peft's print_trainable_parameters, or all
            # parameters for full fine-tuning) is the count measured in the run.
            assert f"{records[0]['trainable_params']:,}" in text
            if method != "full":
                assert f"trainable params: {records[0]['trainable_params']:,}" in text
    if name == "05_compare":
        assert executed.stores["05_compare"] == executed.stores["04_ia3"], "05 trains nothing"
        # The committed study's charts are shown, once each (with its added methods' chart, which smoke runs of
        # the four methods do not draw), and the accuracy chart of your runs, which write_report drew with the
        # rest of their charts into your figures folder.
        drawn = {p.name for p in smoke_env["figures"].glob("*.png")} - {"review_lengths.png"}
        assert drawn == REPORT_CHARTS and text.count('"image/png"') == len(REPORT_CHARTS) + 2 == 13
        assert (smoke_env["results"] / "summary.md").is_file()
        assert "your runs" in text  # the rows of your store, labelled apart from the committed study's
        assert "acc_low" in text and "p_holm" in text and "verdict" in text  # the statistics table
        assert RULES[0][:40] in text  # the rules are shown ...
        verdicts = ("is *equivalent*", "is *worse*", "is *better*", "is *inconclusive*")
        assert any(v in text for v in verdicts) and "Not enough runs" not in text  # ... and the advice from them
        # Small enough to commit: beside its inline charts (the committed study's PNGs and yours) the text, tables
        # included, stays under 200 KB.
        images = sum(len(o["data"]["image/png"]) for o in _outputs(notebook) if "image/png" in o.get("data", {}))
        assert len(nbformat.writes(notebook)) - images < 200_000
    if name == "06_ablations":
        smoke = PROFILES["smoke"]
        base = profile_base(smoke, data_dir=str(smoke_env["data"]))
        study = {r["key"]: r for r in _run_records(smoke_env["results"]) if r["status"] == "ok"}
        for ablation, experiment in ablations().items():
            records = {r["key"]: r for r in _run_records(experiment.path(smoke, smoke_env["results"]))}
            planned = {resolve(c).key for c in experiment_configs(experiment, base, (0,))}
            assert sorted(records) == sorted(planned), ablation
            copied = [key for key in records if key in study]
            assert {records[key]["method"] for key in copied} == STUDY_RUNS_IN[ablation] & {
                study[key]["method"] for key in study}, ablation
            # The study's runs are copied with their record, not trained again.
            assert all(records[key] == study[key] for key in copied), ablation
            assert all(r["status"] in (("ok", "skipped") if r["method"] == "qlora" else ("ok",))
                       for r in records.values()), ablation
            assert (smoke_env["figures"] / f"ablation_{ablation}.png").is_file()
        # The committed validation sweep of the profile's learning-rate table, drawn into your figures folder.
        assert (smoke_env["figures"] / "sweep_lr_cpu_validation.png").is_file()
        assert text.count('"image/png"') == len(ablations()) + 1 and "placement" in text
    if name == "08_budget":
        from peft_imdb.budget import POINTS, budget_table

        assert executed.stores["08_budget"] == executed.stores["07_more_methods"], "08 trains nothing"
        assert text.count("<td>yes</td>") == len(POINTS)  # each point's training reviews lie inside the next's
        stored = not budget_table(REPO / "results" / "budget").empty  # the committed experiment, as far as it went
        assert {(smoke_env["figures"] / f).is_file() for f in ("budget_accuracy.png", "budget_gap.png")} == {stored}
        assert (smoke_env["figures"] / "sweep_budget_lr_cpu_validation.png").is_file()


def test_a_smoke_run_of_02_in_a_fresh_clone_leaves_git_status_clean(fresh_clone, data_dir, monkeypatch):
    """A student's run goes to the git-ignored scratch store: the committed study and figures stay as they are."""
    import subprocess

    for name in ("PEFT_IMDB_RESULTS", "PEFT_IMDB_FIGURES"):
        monkeypatch.delenv(name, raising=False)
    settings = {"PEFT_IMDB_PROFILE": "smoke", "PEFT_IMDB_DATA": str(data_dir), "HF_HUB_OFFLINE": "1",
                "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1",
                "PYTHONPATH": str(fresh_clone / "src")}  # the kernel imports the clone's package
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    execute(fresh_clone / "notebooks" / "02_lora.ipynb", timeout_s=300)
    (record,) = _run_records(fresh_clone / "results-scratch")
    assert record["method"] == "lora" and record["config"]["train_size"] == PROFILES["smoke"].train_size
    status = subprocess.run(["git", "status", "--porcelain"], cwd=fresh_clone, capture_output=True, text=True)
    assert status.returncode == 0 and status.stdout == ""


def test_rerunning_a_method_notebook_shows_its_stored_run(executed, smoke_env):
    executed("02_lora")
    first = _run_records(smoke_env["results"])
    text = _text(execute(_path("02_lora"), timeout_s=300))
    again = _run_records(smoke_env["results"])
    assert [r["key"] for r in again] == [r["key"] for r in first]  # no row added
    lora_first = next(r for r in first if r["method"] == "lora")
    lora_again = next(r for r in again if r["method"] == "lora")
    assert lora_again == lora_first  # kept, not trained again
    assert f"stored run {lora_first['key']} (finished {lora_first['finished_at']})" in text
    assert "retrain=True trains it again" in text


@pytest.mark.integration
def test_load_or_train_trains_only_without_a_finished_stored_run(tmp_path, fake_runs, capsys):
    """A stored `ok` row is returned as it is; retrain=True, or a skipped/failed row, trains it here."""
    trained = fake_runs  # conftest's fake training: the keys it ran
    config = profile_base(PROFILES["smoke"])("lora", 0)
    key = resolve(config).key
    save_result(RunResult(key=key, model=config.model, method="lora", seed=0, status="skipped", reason="no"), tmp_path)
    assert load_or_train(config, tmp_path).status == "ok" and trained == [key]  # a skipped row is tried again
    stored = read_result(key, tmp_path)
    capsys.readouterr()
    assert load_or_train(config, tmp_path) == stored and trained == [key]  # kept
    assert capsys.readouterr().out.strip() == (f"stored run {key} (finished {stored.finished_at}), not trained "
                                               "again; retrain=True trains it again")
    load_or_train(config, tmp_path, retrain=True)
    assert trained == [key, key]
    assert "stored run" not in capsys.readouterr().out


@pytest.mark.integration
def test_load_or_train_shows_the_committed_studys_run_and_trains_apart(tmp_path, fake_runs, capsys):
    """The committed study is only read: its run is shown, not copied; retrain=True trains into your own store."""
    from conftest import store_ok_row

    study, mine = tmp_path / "study", tmp_path / "mine"
    config = profile_base(PROFILES["smoke"])("lora", 0)
    key = resolve(config).key
    store_ok_row(resolve(config), study)
    committed = read_result(key, study)
    capsys.readouterr()
    assert load_or_train(config, mine, study=study) == committed and fake_runs == []
    assert capsys.readouterr().out.strip() == (f"the committed study's run {key} (finished {committed.finished_at}), "
                                               "not trained again; retrain=True trains it into your own store")
    assert not mine.exists()
    assert load_or_train(config, mine, retrain=True, study=study).key == key and fake_runs == [key]
    assert read_result(key, mine) is not None and read_result(key, study) == committed


def test_kernel_runs_this_python(tmp_path):
    """The `python3` kernel must be the interpreter the tests run in (the venv), not another one."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import sys; print(sys.executable)")])
    path = tmp_path / "which.ipynb"
    nbformat.write(notebook, path)
    printed = execute(path, timeout_s=60)["cells"][0]["outputs"][0]["text"].strip()
    assert Path(printed).resolve() == Path(sys.executable).resolve()


def test_qlora_notebook_shows_a_skipped_row_where_nf4_cannot_run(smoke_env, tmp_path, monkeypatch):
    """On a machine whose bitsandbytes cannot run NF4, 03 loads no 4-bit model, records and shows `skipped`."""
    monkeypatch.setenv("PEFT_IMDB_RESULTS", str(tmp_path / "results"))
    notebook = _read("03_qlora")
    no_nf4 = """import peft_imdb.hardware
def no_nf4():
    return False, "bitsandbytes cannot run NF4 on this device (simulated by the test)"
peft_imdb.hardware.nf4_support = no_nf4"""
    notebook["cells"].insert(0, nbformat.v4.new_code_cell(no_nf4))
    text = _text(execute_notebook(notebook, NOTEBOOKS_DIR, timeout_s=300))
    [record] = _run_records(tmp_path / "results")
    assert record["status"] == "skipped" and "simulated by the test" in record["reason"]
    assert "not measured: the run is skipped" in text and "no 4-bit model on this machine" in text
    assert "trainable params:" not in text
