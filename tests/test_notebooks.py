"""The notebooks, executed top to bottom in a real Jupyter kernel on the smoke profile, into a tmp store."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import sys
from pathlib import Path

import nbformat
import pytest

from peft_imdb.ablations import ABLATIONS, ablation_configs, ablation_folder
from peft_imdb.config import PROFILES
from peft_imdb.notebook import NOTEBOOKS, ablation_base, execute, execute_notebook, run_or_load
from peft_imdb.plots import CHARTS
from peft_imdb.report import RULES
from peft_imdb.results import RunResult, read_result, save_result

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = REPO / "notebooks"
METHOD_NOTEBOOKS = {"01_full_finetuning": "full", "02_lora": "lora", "03_qlora": "qlora", "04_ia3": "ia3"}
PARETO_CHARTS = ("pareto_memory.png", "pareto_params.png", "pareto_time.png")
# The methods whose study run (seed 0, the default config: rank 8, the default placement, lr factor 1) is
# one of each ablation's runs: copied from the study's store, not trained. Only `ok` runs are copied.
STUDY_RUNS_IN = {"rank": {"lora"}, "targets": {"lora", "ia3"}, "lr": {"full", "lora", "qlora", "ia3"}}


def _load_builder():
    spec = importlib.util.spec_from_file_location("build_notebooks", REPO / "scripts" / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _path(name: str) -> Path:
    return NOTEBOOKS_DIR / f"{name}.ipynb"


def _read(name: str):
    return nbformat.read(_path(name), as_version=4)


def _code_sources(notebook) -> list[str]:
    return [cell["source"] for cell in notebook["cells"] if cell["cell_type"] == "code"]


# --- structure: cheap, no kernel ---------------------------------------------------------------


def test_notebooks_match_their_generator():
    builder = _load_builder()
    assert list(builder.NOTEBOOK_CELLS) == list(NOTEBOOKS)
    for name in NOTEBOOKS:
        assert builder.cell_sources(_read(name)) == builder.cell_sources(builder.build(name)), (
            f"{name}.ipynb differs from scripts/build_notebooks.py: run that script"
        )


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_reads_like_a_lab_report(name):
    notebook = _read(name)
    nbformat.validate(notebook)
    cells = notebook["cells"]
    assert cells[0]["cell_type"] == "markdown" and cells[0]["source"].startswith("# ")
    code = _code_sources(notebook)
    colab = code[0]
    assert "REPO_URL" in colab and "import google.colab" in colab
    # pip runs only on Colab: the install line sits inside `if ON_COLAB:`.
    install = next(line for line in colab.splitlines() if "pip" in line and "install" in line)
    assert install.startswith("    ") and "if ON_COLAB:" in colab
    assert any("detect_profile()" in source for source in code[:4])
    for source in code:
        tree = ast.parse("\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))))
        loops = [node for node in ast.walk(tree) if isinstance(node, (ast.For, ast.While, ast.comprehension))]
        assert not loops, f"{name}: a loop belongs in src/peft_imdb/, not in a cell:\n{source}"
        assert not [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))], source
    if name in METHOD_NOTEBOOKS:
        method = METHOD_NOTEBOOKS[name]
        assert any(f'RunConfig.from_profile(\n    profile, "{method}"' in source for source in code)
        # The stored run is shown, not trained again: run_or_load, never run_and_record directly.
        assert sum("run_or_load(config, paths.results_dir)" in source for source in code) == 1
        assert not any("run_and_record" in source for source in code)
        assert any("load_results(" in source for source in code)
    if name == "05_compare":
        assert "table = add_statistics(summarize(frame), paths.results_dir)" in "\n".join(code)
        assert any("advice(table)" in source for source in code)
        assert not any("run_or_load" in source or "run_ablation" in source for source in code), "05 trains nothing"
    if name == "06_ablations":
        for ablation in ABLATIONS:
            assert sum(f'run_ablation("{ablation}", base, paths.results_dir)' in source for source in code) == 1
            assert any(f'ablation_table("{ablation}", folder)' in source for source in code)
            assert any(f'write_ablation("{ablation}", folder, paths.figures_dir)' in source for source in code)


def test_readme_lists_every_notebook_in_order_with_a_colab_badge():
    lines = [line for line in (NOTEBOOKS_DIR / "README.md").read_text().splitlines() if ".ipynb" in line
             and "colab-badge" in line]
    assert [next(n for n in NOTEBOOKS if f"{n}.ipynb" in line) for line in lines] == list(NOTEBOOKS)


def test_committed_notebooks_have_a_python3_kernel():
    for name in NOTEBOOKS:
        assert _read(name)["metadata"]["kernelspec"]["name"] == "python3"


def test_notebooks_that_train_open_on_a_colab_gpu():
    for name in NOTEBOOKS:
        trains = any("run_or_load(" in source or "run_ablation(" in source for source in _code_sources(_read(name)))
        if trains:
            assert _read(name)["metadata"].get("accelerator") == "GPU", f"{name} trains but opens on a CPU runtime"


def test_compare_explains_every_chart_of_the_report():
    """05 shows, with a text each, the four bar charts and the three Pareto charts write_report draws."""
    builder = _load_builder()
    assert set(builder.CHART_TEXT) == {chart[3] for chart in CHARTS} | set(PARETO_CHARTS)
    sources = [source for _, source in builder.cell_sources(builder.build("05_compare"))]
    for chart in builder.CHART_TEXT:
        assert f'chart(written, "{chart}")' in sources
    assert any("Pareto frontier" in source for source in sources)
    text = "\n".join(sources)
    assert "one seed is one draw" not in text and "mean ± std" in text and "95%" in text  # seeds, intervals


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
    if "OMP_NUM_THREADS" not in os.environ:
        patch.setenv("OMP_NUM_THREADS", "1")
    yield {"root": root, "results": root / "results", "figures": root / "figures", "data": data_dir}
    patch.undo()


@pytest.fixture(scope="module")
def executed(smoke_env):
    """Executes notebooks on demand, in order (05 reads what 01-04 stored), each once per module."""
    done: dict = {}
    before = {name: _path(name).read_bytes() for name in NOTEBOOKS}

    def run(name: str):
        for earlier in NOTEBOOKS[: NOTEBOOKS.index(name) + 1]:
            if earlier not in done:
                done[earlier] = execute(_path(earlier), timeout_s=300)
        return done[name]

    yield run
    # Execution happens on in-memory copies: the committed files never get outputs from the tests.
    assert {name: _path(name).read_bytes() for name in NOTEBOOKS} == before


def _outputs(notebook) -> list[dict]:
    return [output for cell in notebook["cells"] if cell["cell_type"] == "code" for output in cell["outputs"]]


def _text(notebook) -> str:
    return json.dumps(_outputs(notebook))


def _run_records(results: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((results / "runs").glob("*.json"))]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_top_to_bottom_on_smoke(name, executed, smoke_env):
    notebook = executed(name)  # nbclient raises CellExecutionError on the first failing cell
    assert not [o for o in _outputs(notebook) if o["output_type"] == "error"]
    code_cells = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert all(c["execution_count"] for c in code_cells), "every code cell ran"
    text = _text(notebook)
    assert "smoke" in text
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
            assert f"{records[0]['trainable_params']}" in text  # the measured count is shown
    if name == "05_compare":
        charts = _load_builder().CHART_TEXT
        # Every chart write_report drew is shown, once: the four bars and the three Pareto charts.
        drawn = {p.name for p in smoke_env["figures"].glob("*.png")} - {"review_lengths.png"}
        assert drawn == set(charts) and text.count('"image/png"') == len(charts) == 7
        assert (smoke_env["results"] / "summary.md").is_file()
        assert "acc_low" in text and "p_value" in text  # the statistics table
        assert RULES[0][:40] in text  # the rules are shown ...
        verdicts = ("matches Full FT", "is below Full FT", "is above Full FT")
        assert any(v in text for v in verdicts) and "Not enough runs" not in text  # ... and the advice from them
        # Small enough to commit: the charts are inline PNGs of a few tens of KB.
        assert len(nbformat.writes(notebook)) < 1_000_000
    if name == "06_ablations":
        base = ablation_base(PROFILES["smoke"], data_dir=str(smoke_env["data"]))
        study = {r["key"]: r for r in _run_records(smoke_env["results"]) if r["status"] == "ok"}
        for ablation in ABLATIONS:
            records = {r["key"]: r for r in _run_records(ablation_folder(ablation, smoke_env["results"]))}
            assert sorted(records) == sorted(c.key() for c in ablation_configs(ablation, base)), ablation
            copied = [key for key in records if key in study]
            assert {records[key]["method"] for key in copied} == STUDY_RUNS_IN[ablation] & {
                study[key]["method"] for key in study}, ablation
            # The study's runs are copied with their record, not trained again.
            assert all(records[key] == study[key] for key in copied), ablation
            assert all(r["status"] in (("ok", "skipped") if r["method"] == "qlora" else ("ok",))
                       for r in records.values()), ablation
            assert (smoke_env["figures"] / f"ablation_{ablation}.png").is_file()
        assert text.count('"image/png"') == len(ABLATIONS)
        assert "stored in the study: copied" in text and "lora_r" in text and "placement" in text


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


def test_run_or_load_trains_only_without_a_finished_stored_run(tmp_path, monkeypatch, capsys):
    """A stored `ok` row is returned as it is; retrain=True, or a skipped/failed row, trains (run_and_record)."""
    import peft_imdb.train

    trained = []

    def fake_run_and_record(config, results_dir=None):
        trained.append(config.key())
        result = RunResult(key=config.key(), model=config.model, method=config.method, seed=config.seed,
                           status="ok", accuracy=0.75)
        save_result(result, results_dir)
        return result

    monkeypatch.setattr(peft_imdb.train, "run_and_record", fake_run_and_record)
    config = ablation_base(PROFILES["smoke"], ["lora"])["lora"]
    key = config.key()
    save_result(RunResult(key=key, model=config.model, method="lora", seed=0, status="skipped", reason="no"), tmp_path)
    assert run_or_load(config, tmp_path).status == "ok" and trained == [key]  # a skipped row is tried again
    stored = read_result(key, tmp_path)
    capsys.readouterr()
    assert run_or_load(config, tmp_path) == stored and trained == [key]  # kept
    assert capsys.readouterr().out.strip() == (f"stored run {key} (finished {stored.finished_at}), not trained "
                                               "again; retrain=True trains it again")
    run_or_load(config, tmp_path, retrain=True)
    assert trained == [key, key]
    assert "stored run" not in capsys.readouterr().out


def test_kernel_runs_this_python(tmp_path):
    """The `python3` kernel must be the interpreter the tests run in (the venv), not another one."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import sys; print(sys.executable)")])
    path = tmp_path / "which.ipynb"
    nbformat.write(notebook, path)
    printed = execute(path, timeout_s=60)["cells"][0]["outputs"][0]["text"].strip()
    assert Path(printed).resolve() == Path(sys.executable).resolve()


def test_qlora_notebook_shows_a_skipped_row_where_nf4_cannot_run(smoke_env, tmp_path, monkeypatch):
    """On a machine whose bitsandbytes cannot run NF4, 03 records and shows `skipped`, no error."""
    monkeypatch.setenv("PEFT_IMDB_RESULTS", str(tmp_path / "results"))
    notebook = _read("03_qlora")
    no_nf4 = """import peft_imdb.hardware, peft_imdb.methods
def no_nf4():
    return False, "bitsandbytes cannot run NF4 on this device (simulated by the test)"
peft_imdb.hardware.nf4_support = peft_imdb.methods.nf4_support = no_nf4"""
    notebook["cells"].insert(0, nbformat.v4.new_code_cell(no_nf4))
    text = _text(execute_notebook(notebook, NOTEBOOKS_DIR, timeout_s=300))
    [record] = _run_records(tmp_path / "results")
    assert record["status"] == "skipped" and "simulated by the test" in record["reason"]
    assert "skipped" in text and "not measured: the run is skipped" in text
