"""Shared fixtures: the real IMDb folder, tiny random models of each family, a tiny run config, fake training;
and the test tiers.

Tiers (pytest markers; every test has exactly one, `make test` runs them all):
  unit         no model, no data set, no store, no CLI: pure logic on in-memory values; seconds
  integration  tiny random models, the real IMDb data, the results store, the CLI in-process (real or fake
               training); a single short interpreter run that checks what the installed stack prints
  system       processes: subprocess matrices and kills, the fork server, claims races, torchrun, tmpfs
               mounts, benchmarks, notebook kernels, JupyterLab, pip; and the real pretrained model (`slow`)
  audit        checks over what is committed: results/ records and sweeps, the README's generated blocks,
               the notebooks' committed outputs, version pins, the CI and Makefile wiring

`make test-fast` (pinned stack) and `make test-oldest` (oldest stack) run `-m "unit or integration"`.
A module's tier is MODULE_TIERS below; a test that differs says so with its own `@pytest.mark.<tier>`, which
wins. A test module missing from the table, whose tests carry no tier of their own, fails collection.

The package is imported inside the fixtures, not here: the tiers (and `pytest --collect-only -m ...`) do not
depend on the package importing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent

TIERS = {
    "unit": "no training at all: pure logic on in-memory values, no model, data set, store or CLI (seconds)",
    "integration": "tiny random models, the real IMDb data, the results store, the CLI in-process",
    "system": "subprocesses, kills, the fork server, claims races, torchrun, benchmarks, notebooks, the real model",
    "audit": "checks over the committed records/results, sweeps, README/docs generated blocks, version pins",
}

# Each test module's tier; the tests marked with another tier in the module are listed after it.
MODULE_TIERS = {
    "test_benchmarks.py": "system",  # unit: the padding bound by hand
    "test_budget.py": "integration",  # the budget experiment: its plan, its check, its summary; the real subsets
    # unit: the timeout setting; system: the thread race, dying workers, two real matrices, a killed matrix
    "test_charts.py": "integration",
    "test_claims.py": "integration",
    "test_cli.py": "integration",  # unit: --dropout's key; system: the matrix in forked run processes
    "test_committed_store.py": "audit",
    "test_compat.py": "unit",  # integration: the tiny-model merge and tokenizers, the import-is-silent interpreter
    "test_config.py": "unit",
    "test_curves.py": "unit",  # integration: the chart from a store, a run storing its history
    "test_data.py": "unit",  # integration: the real IMDb folder, its subsets, tokenizing
    # unit: the shipped configs, printed figures, adapter items; system: a real MiniLM build per method
    "test_estimate.py": "integration",
    # unit: the runs each experiment plans; system: rank on the real model (smoke)
    "test_experiments.py": "integration",
    "test_faults.py": "integration",  # system: tmpfs mounts, the full disk in a subprocess matrix, a killed report
    "test_findings.py": "integration",  # audit: the committed sentences, the README and docs
    "test_flops.py": "unit",  # integration: a tiny LoRA model; system: benchmarks/mfu.py
    "test_further_methods.py": "integration",  # unit: the registry's family, the experiments' methods
    "test_gpucheck.py": "system",  # unit: the synthetic reviews
    "test_hardware_tracking.py": "unit",
    "test_inference.py": "integration",
    "test_learning.py": "unit",  # integration: absurd learning rates on a tiny model, the summary's marks
    "test_methods.py": "integration",  # unit: an unknown architecture
    "test_more_methods.py": "integration",  # unit: the registry, AdaLoRA's schedule
    "test_notebooks.py": "system",  # audit: the committed notebooks; integration: load_or_train
    "test_packaging.py": "audit",  # system: pip against an index, a JupyterLab server
    "test_precision.py": "unit",  # integration: a bf16 Trainer run on a tiny model
    # integration: a tuning run, the tuning reviews; audit: the committed sweeps and choices
    "test_protocol.py": "unit",
    "test_ray.py": "system",  # a local Ray cluster: --executor ray
    "test_real_model.py": "system",  # unit: the shipped weights are there
    "test_registry.py": "integration",  # unit: the adapter flag's shortcuts
    "test_reliability.py": "integration",  # system: the killed matrix and run process, the fork server, torchrun
    "test_report.py": "integration",  # unit: the Pareto front; audit: the README's generated tables
    "test_reproduce.py": "integration",  # unit: same_stack
    "test_results.py": "integration",  # unit: a bad status
    "test_setup_cell.py": "unit",  # audit: the first cell's length; integration: a real git clone, a bare interpreter
    "test_set_repository.py": "unit",  # audit: the committed badges and cells; system: a fresh clone set to a fork
    "test_stores.py": "unit",  # integration: `run` and `experiment` writing with fake training
    "test_stats.py": "unit",
    "test_stopping.py": "system",  # unit: a stop during storing, a second signal during cleanup
    "test_stats_two_level.py": "unit",
    "test_train.py": "integration",  # unit: the metrics on a known case
    "test_wall_time.py": "unit",
}


def pytest_configure(config):
    for name, description in TIERS.items():
        config.addinivalue_line("markers", f"{name}: test tier: {description}")


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects: the tier a module gives is a marker to select on
def pytest_collection_modifyitems(config, items):
    """Give every test under tests/ exactly one tier: its own marker, else its module's; else fail collection."""
    problems = []
    for item in items:
        try:
            module = item.path.resolve().relative_to(TESTS).as_posix()
        except ValueError:
            continue  # not one of ours
        own = sorted({mark.name for mark in item.iter_markers() if mark.name in TIERS})
        if len(own) > 1:
            problems.append(f"{item.nodeid}: {len(own)} tiers ({', '.join(own)}); a test has exactly one")
        elif not own:
            if module not in MODULE_TIERS:
                problems.append(f"{item.nodeid}: no tier: add {module!r} to MODULE_TIERS in tests/conftest.py "
                                f"or mark the test with one of {', '.join(TIERS)}")
            else:
                item.add_marker(MODULE_TIERS[module])
    if problems:
        raise pytest.UsageError("untiered tests:\n" + "\n".join(problems))


# --- data and tiny models --------------------------------------------------------------------------


def imdb_dir() -> Path:
    """PEFT_IMDB_DATA, else ../shared/data/imdb beside the repository."""
    return Path(os.environ.get("PEFT_IMDB_DATA") or REPO.parent / "shared" / "data" / "imdb")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = imdb_dir()
    if not (path / "train.jsonl").is_file():
        pytest.skip(f"real IMDb data not found at {path}; set PEFT_IMDB_DATA")
    return path


@pytest.fixture(scope="session")
def imdb(data_dir):
    from peft_imdb.data import load_imdb

    return load_imdb(data_dir)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory, imdb) -> dict[str, Path]:
    """One tiny random classifier per architecture family, tokenizer trained on real reviews."""
    from peft_imdb.tiny import FAMILIES, build_tiny_model

    root = tmp_path_factory.mktemp("tiny-models")
    texts = imdb["train"].select(range(0, 25000, 125))["text"]
    return {family: build_tiny_model(family, root / family, texts) for family in FAMILIES}


def tiny_config(model: str | Path, method: str, **overrides):
    """A run small enough for seconds on CPU."""
    from peft_imdb.config import RunConfig

    settings = dict(model=str(model), method=method, train_size=32, eval_size=16, val_size=8,
                    epochs=1, max_length=32, batch_size=8, lr=1e-3)
    settings.update(overrides)
    return RunConfig(**settings)


# --- a method on a tiny model ------------------------------------------------------------------------


def tiny_batch(tokenizer, texts=("a great film", "an awful movie , really bad and long")):
    """Two labelled reviews as a padded batch of tensors."""
    import torch

    batch = tokenizer(list(texts), padding=True, return_tensors="pt")
    batch["labels"] = torch.tensor([1, 0])
    return batch


def builds_trains_what_it_should_and_matches_its_formula(tiny_models, family: str, method: str,
                                                         unsupported: dict[tuple[str, str], str]) -> None:
    """A method on a tiny model of `family`: it builds (or is Unsupported with the reason `unsupported` gives), its
    formula is the measured count, and one optimizer step moves exactly the parameters it trains."""
    import re

    import torch

    from peft_imdb.errors import Unsupported
    from peft_imdb.methods import get_method
    from peft_imdb.models import build_model, load_tokenizer
    from peft_imdb.params import ALL_PARAMETERS, count_parameters, expected_parameters
    from peft_imdb.resolved import resolve

    config = tiny_config(tiny_models[family], method)
    tokenizer = load_tokenizer(config.model)
    try:
        built = build_model(resolve(config), tokenizer)
    except Unsupported as exc:
        assert (method, family) in unsupported, f"{method} on {family} should build: {exc}"
        assert re.search(unsupported[(method, family)], str(exc)), str(exc)
        return
    assert (method, family) not in unsupported, f"{method} now builds on {family}: drop it from unsupported"
    model = built.model
    counts = count_parameters(model, built.head_modules)

    # The formula, from the architecture alone (a weightless model), is the count on the built model.
    expected = expected_parameters(config)
    assert int(expected.loc["trainable (total)", "params"]) == counts.trainable
    assert int(expected.loc[ALL_PARAMETERS, "params"]) == counts.total
    heads = [part for part in expected.index if part.startswith("head:")]
    assert int(expected.loc[heads, "params"].sum()) == counts.head > 0

    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    assert counts.trainable == sum(p.numel() for p in trainable.values()) < counts.total / 5
    if get_method(method).prepare is not None:  # BitFit: no peft; biases and the head
        assert all(n.endswith("bias") or set(n.split(".")) & set(built.head_modules) for n in trainable)
        assert any(n.endswith("weight") for n in trainable)  # the head's weights
    else:  # peft names adapter weights and trained head copies after the adapter
        assert all(".default" in n for n in trainable), [n for n in trainable if ".default" not in n]

    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.0)
    loss = model(**tiny_batch(tokenizer)).loss
    assert torch.isfinite(loss)
    loss.backward()
    with_gradient = {n for n, p in model.named_parameters() if p.requires_grad and p.grad is not None
                     and p.grad.abs().sum() > 0}
    optimizer.step()

    after = dict(model.named_parameters())
    changed = {n for n, p in trainable.items() if not torch.equal(p, after[n].detach())}
    # Exactly the parameters with a gradient move (some start where they get none, e.g. LoRA's A while B
    # is zero); the adapter itself moves, not only the head; nothing frozen moves.
    assert changed == with_gradient
    assert [n for n in changed if not set(n.split(".")) & set(built.head_modules)], "only the head changed"
    assert [n for n in changed if set(n.split(".")) & set(built.head_modules)], "the head did not change"
    assert all(torch.equal(p, after[n].detach()) for n, p in frozen.items())


# --- fake training ---------------------------------------------------------------------------------


def store_ok_row(run, results_dir):
    """What a stubbed training stores: an `ok` record of made-up metrics for the resolved run."""
    from peft_imdb.results import save_result

    result = run.record("ok", accuracy=0.5, f1=0.5, trainable_params=1, total_params=2, train_time_s=1.0,
                        peak_memory_mb=1.0, memory_kind="cpu_rss")
    save_result(result, results_dir)
    return result


@pytest.fixture
def fake_runs(monkeypatch) -> list[str]:
    """Training replaced by a stub (runner.train_and_store) that stores an `ok` row at once (store_ok_row).

    Returns the keys it ran, in order. No model and no data are touched: for the plumbing around training
    (matrix, claims, shards, merge, load_or_train, the checks that stop a command before anything trains).
    Applies in this process only: commands of `matrix` must run with --in-process.
    """
    import peft_imdb.runner as runner

    calls: list[str] = []

    def train_and_store(run, results_dir=None, imdb=None):
        calls.append(run.key)
        return store_ok_row(run, results_dir)

    monkeypatch.setattr(runner, "train_and_store", train_and_store)
    return calls


# --- a fresh clone ---------------------------------------------------------------------------------


def _git(*args: str, cwd: Path) -> str:
    import subprocess

    done = subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args], cwd=cwd,
                          check=True, capture_output=True, text=True)
    return done.stdout


@pytest.fixture
def fresh_clone(tmp_path) -> Path:
    """A git clone of this repository as its working tree stands (committed or not), with a clean `git status`.

    Cloned, then the working tree's tracked and untracked (not ignored) files laid over it and committed there:
    what a student gets from `git clone` once these files are pushed.
    """
    import shutil

    clone = tmp_path / "peft-imdb"
    _git("clone", "--quiet", str(REPO), str(clone), cwd=tmp_path)
    listed = _git("ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=REPO).split("\0")
    present = {name for name in listed if name and (REPO / name).is_file()}
    for name in present:
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, clone / name)
    for name in _git("ls-files", "-z", cwd=clone).split("\0"):
        if name and name not in present:
            (clone / name).unlink()
    _git("add", "-A", cwd=clone)
    if _git("status", "--porcelain", cwd=clone):
        _git("commit", "--quiet", "-m", "the working tree", cwd=clone)
    return clone
