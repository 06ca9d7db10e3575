"""Packaging: one source of truth for the ranges, a lock inside them, the oldest stack at their floors,
a Colab-safe requirements.txt, `make lab`'s JupyterLab with the project's kernel, and the test tiers as CI and
the Makefile run them."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = None

REPO = Path(__file__).resolve().parents[1]
KERNEL = "peft-imdb"
# What `make lab` passes to JupyterLab (the test starts it the same way).
LAB_ARGS = ["--ServerApp.root_dir=notebooks", f"--MappingKernelManager.default_kernel_name={KERNEL}"]


def _pyproject() -> dict:
    text = (REPO / "pyproject.toml").read_text()
    if tomllib is None:
        pytest.skip("tomllib needs Python >= 3.11")
    return tomllib.loads(text)


def _requirement_lines(name: str) -> list[Requirement]:
    lines = (REPO / name).read_text().splitlines()
    return [Requirement(line.split("#")[0].strip()) for line in lines if line.split("#")[0].strip()]


def _declared() -> dict[str, Requirement]:
    """Every package pyproject.toml declares: dependencies and the extras (not the self-reference)."""
    project = _pyproject()["project"]
    requirements = [Requirement(r) for r in project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        requirements += [r for r in map(Requirement, extra) if canonicalize_name(r.name) != "peft-imdb"]
    return {canonicalize_name(r.name): r for r in requirements}


def _pins(name: str) -> dict[str, Version]:
    pins = {}
    for requirement in _requirement_lines(name):
        (spec,) = requirement.specifier  # one `==` per line
        assert spec.operator == "==", f"{name}: {requirement} is not an exact pin"
        pins[canonicalize_name(requirement.name)] = Version(spec.version)
    return pins


def _lower_bound(requirement: Requirement) -> Version:
    (bound,) = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
    return bound


def test_requirements_txt_is_pyprojects_dependencies():
    declared = sorted(str(Requirement(r)) for r in _pyproject()["project"]["dependencies"])
    listed = sorted(str(r) for r in _requirement_lines("requirements.txt"))
    assert listed == declared, "requirements.txt must repeat pyproject.toml's [project].dependencies"


def test_every_range_has_a_lower_bound_and_torch_is_never_pinned():
    for name, requirement in _declared().items():
        _lower_bound(requirement)  # exactly one >=
        assert not any(s.operator in ("==", "===", "~=") for s in requirement.specifier), requirement
    torch = _declared()["torch"]
    assert torch.specifier.contains("2.13.0") and torch.specifier.contains("2.5.1")  # Colab's older torch kept


def test_the_cpu_lock_pins_every_declared_package_inside_its_range():
    pins = _pins("requirements-cpu.txt")
    for name, requirement in _declared().items():
        assert name in pins, f"requirements-cpu.txt does not pin {name}"
        assert requirement.specifier.contains(pins[name]), f"requirements-cpu.txt: {name}=={pins[name]} is outside {requirement}"
    assert pins["torch"] == Version("2.13.0")  # the version the committed results came from


def test_the_oldest_constraints_pin_every_lower_bound():
    pins = _pins("constraints-oldest.txt")
    for name, requirement in _declared().items():
        if name in ("jupyterlab", "ray"):  # dev and ray extras only: the oldest environment installs [test]
            continue
        assert name in pins, f"constraints-oldest.txt does not pin {name}"
        if name == "torch":  # the CPU wheel; torch's own floor is not installable cheaply here
            assert pins[name] == Version("2.13.0")
            continue
        assert pins[name] == _lower_bound(requirement), (
            f"constraints-oldest.txt pins {name}=={pins[name]}, but pyproject.toml's floor is {requirement}")


# --- the test tiers: what CI and the Makefile run ---------------------------------------------------

FAST = '-m "unit or integration"'


def _make_dry_run(target: str) -> str:
    """What `make <target>` runs (make -n: printed, not run), without PYTEST_ARGS."""
    # Under `make test` this process inherits the outer make's variables (MAKEFLAGS): not for this one.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "PYTEST_ARGS")}
    dry = subprocess.run(["make", "-n", target, "PYTEST_ARGS="], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=60)
    assert dry.returncode == 0, dry.stderr
    return dry.stdout


def _pytest_command(target: str) -> str:
    """The one pytest command line `make <target>` runs."""
    (line,) = [line for line in _make_dry_run(target).splitlines() if " -m pytest " in f"{line} "]
    return line.strip()


def test_ci_runs_every_tier_on_the_pinned_stack_and_the_fast_tiers_on_the_oldest():
    ci = (REPO / ".ci" / "run").read_text()
    assert re.search(r"^make test PYTEST_ARGS=--durations=15 \|\|", ci, re.M)
    assert re.search(r"^[^#]*\bmake test-oldest PYTEST_ARGS=--durations=15\b.*&$", ci, re.M)  # beside it
    assert "wait $oldest" in ci and "exit $status" in ci  # non-zero when either suite failed
    assert re.search(r"^echo .*total time", ci, re.M) and "BUDGET_S=1200" in ci  # the 20-minute budget, watched
    assert "constraints-oldest.txt" in (REPO / "Makefile").read_text()
    everything = _make_dry_run("test")  # three sessions side by side: the system tier in two, every other tier
    assert everything.count(" -m pytest --strict-markers") == 3 and "--ignore" not in everything
    # The system tier split in two that together hold every system test: one selection and all the others.
    (first,) = re.findall(r'-m system -k "([^"(]+)"', everything)
    assert f'-m system -k "not ({first})"' in everything
    assert '-m "not system"' in everything and "wait $system" in everything and "wait $notebooks" in everything
    assert _pytest_command("test-fast").endswith(f"--strict-markers {FAST}")  # the pinned stack
    oldest = _pytest_command("test-oldest")
    assert oldest.startswith("PY=") and ".venv-oldest/bin/python -m pytest" in oldest and oldest.endswith(FAST)


def test_every_test_module_has_a_tier():
    from conftest import MODULE_TIERS, TIERS

    assert sorted(MODULE_TIERS) == sorted(p.name for p in (REPO / "tests").glob("test_*.py")), (
        "tests/conftest.py's MODULE_TIERS must name every test module, and only those")
    assert set(MODULE_TIERS.values()) <= set(TIERS) == {"unit", "integration", "system", "audit"}


def test_every_collected_test_has_exactly_one_tier(request):
    from conftest import TIERS

    registered = {line.split(":")[0] for line in request.config.getini("markers")}
    assert set(TIERS) | {"slow", "network"} <= registered
    for item in request.session.items:
        assert len({mark.name for mark in item.iter_markers() if mark.name in TIERS}) == 1, item.nodeid


def _collect(root: Path, files: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """`pytest --collect-only -q` on test files beside a copy of tests/conftest.py, outside the repository."""
    tests = root / "tests"
    tests.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "tests" / "conftest.py", tests / "conftest.py")
    (root / "pytest.ini").write_text("[pytest]\n")  # the rootdir: not the repository's pyproject.toml
    for name, text in files.items():
        (tests / name).write_text(textwrap.dedent(text))
    return subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                           "--strict-markers", *args, "tests"], cwd=root, capture_output=True, text=True, timeout=300)


def _selected(done: subprocess.CompletedProcess) -> list[str]:
    assert done.returncode == 0, done.stdout + done.stderr
    return sorted(line.split("::")[1] for line in done.stdout.splitlines() if "::" in line)


def test_a_test_gets_its_modules_tier_or_its_own_and_an_untiered_one_fails_collection(tmp_path):
    tiered = {
        "test_stats.py": """
            import pytest

            def test_by_module():  # test_stats.py is a unit module
                pass

            @pytest.mark.system
            def test_own_tier():
                pass
        """,
        "test_not_in_the_table.py": """
            import pytest

            pytestmark = pytest.mark.audit

            def test_module_marker():
                pass
        """,
    }
    assert _selected(_collect(tmp_path / "ok", tiered, "-m", "unit")) == ["test_by_module"]
    assert _selected(_collect(tmp_path / "ok", tiered, "-m", "system or audit")) == ["test_module_marker",
                                                                                     "test_own_tier"]
    untiered = {
        "test_stats.py": """
            import pytest

            @pytest.mark.unit
            @pytest.mark.integration
            def test_two_tiers():
                pass
        """,
        "test_brand_new.py": """
            def test_without_a_tier():
                pass
        """,
    }
    done = _collect(tmp_path / "bad", untiered, "-m", "unit or integration")
    output = done.stdout + done.stderr
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, output
    assert "test_brand_new.py::test_without_a_tier: no tier" in output and "MODULE_TIERS" in output
    assert "test_stats.py::test_two_tiers: 2 tiers (integration, unit)" in output


# --- pip: requirements.txt keeps a preinstalled torch -------------------------------------------

_NO_INDEX = ("No matching distribution found", "Could not find a version", "NewConnectionError",
             "Failed to establish a new connection", "Temporary failure in name resolution",
             "Network is unreachable", "ProxyError", "Max retries exceeded", "ConnectTimeout")


@pytest.mark.system
@pytest.mark.network
def test_requirements_txt_keeps_the_installed_torch(tmp_path):
    """On Colab torch is preinstalled: `pip install -r requirements.txt` must not replace it."""
    import torch

    report = tmp_path / "report.json"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--report", str(report),
                           "-r", str(REPO / "requirements.txt")], capture_output=True, text=True, timeout=600)
    if done.returncode != 0 and any(marker in done.stderr for marker in _NO_INDEX):
        pytest.skip(f"pip cannot reach a package index: {done.stderr.strip().splitlines()[-1]}")
    assert done.returncode == 0, done.stderr
    install = {canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"]
               for item in json.loads(report.read_text())["install"]}
    assert "torch" not in install, f"would replace torch {torch.__version__} with {install['torch']}"
    assert not any(name.startswith("nvidia-") for name in install), sorted(install)


# --- make lab: JupyterLab finds the project's kernel --------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.system
def test_jupyterlab_serves_the_projects_kernel(tmp_path):
    pytest.importorskip("jupyterlab", reason="JupyterLab is in the dev extra (make setup), not in [test]")
    port, token = _free_port(), "peft-imdb-test-token"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "JUPYTER_CONFIG_DIR": str(tmp_path / "config")}
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", *LAB_ARGS,
         *(["--allow-root"] if os.geteuid() == 0 else [])],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/kernelspecs",
                                         headers={"Authorization": f"token {token}"})
        deadline, specs = time.monotonic() + 120, None
        while specs is None:
            assert server.poll() is None, f"JupyterLab exited: {server.stderr.read()[-2000:]}"
            assert time.monotonic() < deadline, "JupyterLab did not answer within 120 s"
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    specs = json.load(response)
            except OSError:
                time.sleep(0.5)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert KERNEL in specs["kernelspecs"], (
        f"no {KERNEL!r} kernel (found {sorted(specs['kernelspecs'])}): make setup installs it")
    assert specs["default"] == KERNEL
    argv = specs["kernelspecs"][KERNEL]["spec"]["argv"]
    assert Path(argv[0]).resolve() == Path(sys.executable).resolve(), argv  # this environment's Python


def test_make_setup_installs_the_kernel_and_make_lab_opens_the_notebooks_with_it():
    makefile = (REPO / "Makefile").read_text()
    assert "ipykernel install --sys-prefix --name $(KERNEL)" in makefile and f"KERNEL := {KERNEL}" in makefile
    dry = subprocess.run(["make", "-n", "lab"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0, dry.stderr
    assert "jupyter lab " + " ".join(LAB_ARGS) in dry.stdout
