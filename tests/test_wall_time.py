"""The wall-time estimate of planned runs: stored throughput (faked records), scaled to this CPU by a faked matmul
measurement against a stored figure, and every case where it says it is rough."""

from __future__ import annotations

import json

import pytest

from peft_imdb.config import RunConfig
from peft_imdb.hardware import Precision
from peft_imdb.resolved import ResolvedRun
from peft_imdb.results import RunResult
from peft_imdb.wall_time import PROBE_KEY, CpuKind, Estimator, MatmulFigure, duration, stored_matmul

EPYC = {"device": "cpu (x86_64, 2 threads)", "cpu": {"cpu_model": "AMD EPYC", "bf16_flags": ["avx512_bf16"],
                                                    "avx512f": True}}
AVX2 = {"device": "cpu (x86_64, 2 threads)", "cpu": {"cpu_model": "AMD EPYC", "bf16_flags": [], "avx512f": False}}


def _run(method="full", precision="fp32", group="g-full", max_length=128, train_size=2000, eval_size=2000,
         epochs=1) -> ResolvedRun:
    config = RunConfig(model="minilm", method=method, train_size=train_size, eval_size=eval_size, epochs=epochs,
                       max_length=max_length, precision=precision)
    return ResolvedRun(config, "bert", "minilm", Precision(precision, "why"), None, {}, group,
                       f"minilm__{method}__seed0__{group}", method)


def _record(key, method="full", precision="fp32", group="g-full", env=EPYC, train=20.0, evaluate=100.0, load=1.0,
            max_length=128) -> RunResult:
    return RunResult(key=key, model="minilm", method=method, seed=0, status="ok", group=group, precision_mode=precision,
                     config={"max_length": max_length, "precision": precision, "evaluate_test": True},
                     train_samples_per_s=train, eval_samples_per_s=evaluate, load_time_s=load, env=env)


def _no_probe(dtype):
    raise AssertionError("no measurement is needed when the runs were measured on this kind of machine")


def test_runs_measured_on_this_kind_are_taken_as_measured_and_nothing_is_timed():
    records = [_record("a", train=20.0), _record("b", train=30.0, evaluate=300.0)]  # means: 25 and 200 samples/s
    estimate = Estimator(records, {}, here=CpuKind.of(EPYC), probe=_no_probe, native=frozenset({"fp32"})).plan(
        [_run(epochs=2)])
    # 2000 reviews x 2 epochs / 25 + 2000 test reviews / 200 + 1 s load = 160 + 10 + 1.
    assert estimate.runs[0].seconds == pytest.approx(171.0)
    assert estimate.seconds == pytest.approx(171.0) and estimate.rough == []
    lines = estimate.lines()
    assert lines[0] == ("estimated wall time on this machine (AMD EPYC with avx512_bf16): ~3 min for 1 run(s)")
    assert "2 stored run(s) of the same settings (full, fp32 at length 128)" in lines[1]
    assert "25.0 training, 200 evaluation samples/s" in lines[1]
    assert "  measured on this kind of machine: not scaled" in lines and lines[-1].startswith("  not counted")


def test_another_cpu_kind_is_scaled_by_this_cpus_matmul_against_the_stored_figure():
    probed = []

    def probe(dtype):
        probed.append(dtype)
        return 100.0  # half the stored figure: this CPU is taken as twice as slow

    matmul = {(CpuKind.of(EPYC), "fp32"): MatmulFigure(200.0, f"mfu_minilm.json, {PROBE_KEY}")}
    estimate = Estimator([_record("a")], matmul, here=CpuKind.of(AVX2), probe=probe,
                         native=frozenset({"fp32"})).plan([_run(), _run(group="g2")])
    # Measured there: 2000 / 20 + 2000 / 100 + 1 = 121 s; here twice that. The second run has no group match but
    # the same method, precision and length.
    assert [r.seconds for r in estimate.runs] == [pytest.approx(242.0)] * 2
    assert probed == ["fp32", "fp32"] and estimate.rough == []
    scaling = estimate.runs[0].scaling
    assert "scaled ×2.00 in time" in scaling and "100.0 GFLOP/s" in scaling and "200.0 GFLOP/s on AMD EPYC" in scaling
    assert estimate.lines()[0].startswith("estimated wall time on this machine (AMD EPYC without native bf16 "
                                          "(no AVX-512)): ~8 min for 2 run(s)")


def test_rough_cases_say_why():
    records = [_record("a"), _record("b", method="lora", precision="bf16", group="g-lora", train=40.0)]
    here = CpuKind.of(AVX2)
    # No figure stored for the records' CPU kind: not scaled, rough.
    unscaled = Estimator(records, {}, here=here, probe=_no_probe, native=frozenset({"fp32"})).run(_run())
    assert unscaled.seconds == pytest.approx(121.0) and "no fp32 matmul figure stored for AMD EPYC" in unscaled.rough
    # A dtype this machine does not run natively: scaled, but rough.
    matmul = {(CpuKind.of(EPYC), "bf16"): MatmulFigure(900.0, "x")}
    emulated = Estimator(records, matmul, here=here, probe=lambda dtype: 1.8, native=frozenset({"fp32"})).run(
        _run("lora", "bf16", "g-lora"))
    assert emulated.seconds == pytest.approx((2000 / 40 + 20 + 1) * 500) and "bf16 is not native here" in emulated.rough
    # Only other methods measured in that precision and length.
    other = Estimator(records, {}, here=CpuKind.of(EPYC), probe=_no_probe).run(_run("ia3", "fp32", "g-ia3"))
    assert other.seconds == pytest.approx(121.0) and "no stored ia3 run in fp32 at length 128" in other.rough
    assert "other methods in fp32 at length 128" in other.source
    # Another max length: time in proportion to it.
    longer = Estimator(records, {}, here=CpuKind.of(EPYC), probe=_no_probe).run(_run(group="g-256", max_length=256))
    assert longer.seconds == pytest.approx(2 * 120 + 1) and "scaled from the nearest length" in longer.rough
    # Nothing to go by.
    none = Estimator(records, {}, here=CpuKind.of(EPYC), probe=_no_probe).plan([_run(precision="fp16", group="x")])
    assert none.runs[0].seconds is None and none.seconds == 0
    assert none.lines() == ["estimated wall time on this machine (AMD EPYC with avx512_bf16): unknown; 1 run(s) "
                            "without an estimate (no stored run of minilm in fp16 at length 128)"]


def test_a_method_tuned_but_never_scored_on_test_takes_the_other_methods_evaluation_rate():
    tuned = _record("t", method="dora", group="g-dora", train=25.0, evaluate=None)  # a sweep run: validation only
    scored = [_record("a", evaluate=100.0), _record("b", method="lora", group="g-lora", evaluate=300.0),
              _record("c", method="ia3", group="g-ia3", evaluate=5.0, env=AVX2)]  # another kind: not taken
    run = Estimator([tuned, *scored], {}, here=CpuKind.of(EPYC), probe=_no_probe).run(_run("dora", group="g-dora2"))
    # 2000 / 25 training + 2000 test reviews / 200 (the mean of the two scored runs on this kind) + 1 s load.
    assert run.seconds == pytest.approx(80 + 10 + 1)
    assert "no stored dora evaluation: other methods' evaluation rate" in run.rough
    alone = Estimator([tuned], {}, here=CpuKind.of(EPYC), probe=_no_probe).run(_run("dora", group="g-dora2"))
    assert alone.seconds == pytest.approx(81) and "test evaluation not counted" in alone.rough


def test_a_run_copied_into_several_folders_counts_once():
    records = [_record("a", train=10.0), _record("a", train=10.0), _record("b", train=40.0)]
    run = Estimator(records, {}, here=CpuKind.of(EPYC), probe=_no_probe).run(_run())
    assert run.source.startswith("2 stored run(s)") and run.seconds == pytest.approx(2000 / 25 + 20 + 1)


def test_stored_matmul_prefers_the_probe_shape_and_falls_back_to_the_peak(tmp_path):
    cpu = EPYC["cpu"]
    (tmp_path / "a_peak_only.json").write_text(json.dumps(
        {"cpu": cpu, "env": {"device": EPYC["device"]}, "peak_gflops": {"fp32": 230.0, "bf16": 1000.0}}))
    (tmp_path / "b_shapes.json").write_text(json.dumps(
        {"cpu": cpu, "env": {"device": EPYC["device"]}, "peak_gflops": {"fp32": 223.0, "bf16": 951.0},
         "peaks_by_shape": {"fp32": {"peak": 223.0, "shapes": {PROBE_KEY: 211.0}}}}))
    (tmp_path / "c_not_a_benchmark.json").write_text(json.dumps({"rows": []}))
    figures = stored_matmul([tmp_path])
    kind = CpuKind.of(EPYC)
    assert figures[kind, "fp32"].gflops == 211.0 and figures[kind, "fp32"].source.endswith(PROBE_KEY)
    assert figures[kind, "bf16"].gflops == 1000.0 and figures[kind, "bf16"].source.endswith("its peak")
    assert len(figures) == 2


def test_duration_reads_in_the_best_unit():
    assert [duration(s) for s in (40, 150, 3000, 9000)] == ["40 s", "2 min", "50 min", "2.5 h"]
