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

from peft_imdb.notebook import NOTEBOOKS, execute, execute_notebook

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = REPO / "notebooks"
METHOD_NOTEBOOKS = {"01_full_finetuning": "full", "02_lora": "lora", "03_qlora": "qlora", "04_ia3": "ia3"}


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
        assert sum("run_and_record(config, paths.results_dir)" in source for source in code) == 1
        assert any("load_results(" in source for source in code)


def test_readme_lists_every_notebook_in_order_with_a_colab_badge():
    lines = [line for line in (NOTEBOOKS_DIR / "README.md").read_text().splitlines() if ".ipynb" in line
             and "colab-badge" in line]
    assert [next(n for n in NOTEBOOKS if f"{n}.ipynb" in line) for line in lines] == list(NOTEBOOKS)


def test_committed_notebooks_have_a_python3_kernel():
    for name in NOTEBOOKS:
        assert _read(name)["metadata"]["kernelspec"]["name"] == "python3"


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
    yield {"root": root, "results": root / "results", "figures": root / "figures"}
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
        for chart in ("accuracy.png", "trainable_params.png", "train_time.png", "peak_memory.png"):
            assert (smoke_env["figures"] / chart).is_file()
        assert (smoke_env["results"] / "summary.md").is_file()
        assert text.count('"image/png"') == 4
        # Small enough to commit: the charts are inline PNGs of a few tens of KB.
        assert len(nbformat.writes(notebook)) < 1_000_000


def test_rerunning_a_method_notebook_replaces_its_row(executed, smoke_env):
    executed("02_lora")
    first = _run_records(smoke_env["results"])
    execute(_path("02_lora"), timeout_s=300)
    again = _run_records(smoke_env["results"])
    assert len(again) == len(first)
    assert [r["key"] for r in again] == [r["key"] for r in first]
    lora_first = next(r for r in first if r["method"] == "lora")
    lora_again = next(r for r in again if r["method"] == "lora")
    assert lora_again["finished_at"] > lora_first["finished_at"]  # rewritten, not kept


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
