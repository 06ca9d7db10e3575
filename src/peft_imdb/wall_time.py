"""How long planned runs take on this machine: the stored runs' throughput, scaled to this CPU by a short matmul
measurement.

A run takes its training reviews × epochs over the training samples/s that stored runs of the same model, method,
precision and max length measured, plus its test reviews over their evaluation samples/s, plus their model load.
Runs measured on another kind of CPU are scaled by this CPU's matmul GFLOP/s in the run's dtype (measured now, one
model-shaped GEMM) over the same figure stored for their CPU kind (benchmark records in results/benchmarks/). The
estimate says when it is rough: no figure stored for their CPU kind (not scaled), only other methods measured, a
dtype this machine does not run natively (matmul scaling overstates the slowdown), evaluation timed on other
methods (tuning runs score no test set), or no stored evaluation rate.
Process start and imports of each run are not counted.
"""

from __future__ import annotations

import functools
import json
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .hardware import cpu_kind_text
from .resolved import ResolvedRun
from .results import RunResult

IMDB_SPLIT_REVIEWS = 25_000  # each IMDb split; a size of None means the whole split
PROBE_SHAPE = (1024, 384, 1536)  # tokens x in x out: MiniLM's feed-forward at batch 8 x 128, as benchmarks store it
PROBE_KEY = "x".join(map(str, PROBE_SHAPE))
PROBE_SECONDS = 1.0  # timing per dtype

# From the closest stored runs to the loosest: the fields that must agree, what the matched runs are, and why a
# match that loose is rough ("" when it is not). {at} is the matched runs' precision and max length.
MATCHES = (
    (("group",), "the same settings ({label}, {at})", ""),  # another seed, or the same run stored before
    (("model", "method", "precision", "max_length", "scores_test"), "{method} in {at}", ""),
    (("model", "method", "precision", "max_length"), "{method} in {at}", ""),  # tuning runs for test-scored ones
    (("model", "precision", "max_length"), "other methods in {at}",
     "no stored {method} run in {precision} at length {max_length}: the other methods' throughput"),
    (("model", "method", "precision"), "{method} in {at}",
     "no stored {method} run in {precision} at length {max_length}: scaled from the nearest length by the ratio "
     "of lengths"),
)


@dataclass(frozen=True)
class CpuKind:
    """The machine a run was measured on, as records store it: device and CPU model and flags."""

    device: str
    cpu_model: str
    bf16_flags: tuple[str, ...]
    avx512f: bool

    @classmethod
    def of(cls, env: dict[str, Any]) -> CpuKind:
        """The kind of an `environment()` record (or anything with `device` and `cpu`)."""
        cpu = env.get("cpu") or {}
        return cls(str(env.get("device", "")), str(cpu.get("cpu_model", "")), tuple(cpu.get("bf16_flags") or ()),
                   bool(cpu.get("avx512f")))

    @property
    def on_cpu(self) -> bool:
        """Whether it trains on the CPU (not a GPU)."""
        return self.device.startswith("cpu")

    @property
    def text(self) -> str:
        """In words: `AMD EPYC with avx512_bf16` (the GPU's name on a GPU)."""
        if not self.on_cpu:
            return self.device
        return cpu_kind_text({"cpu_model": self.cpu_model, "bf16_flags": list(self.bf16_flags),
                              "avx512f": self.avx512f})


@dataclass(frozen=True)
class MatmulFigure:
    """A stored matmul GFLOP/s of one dtype on one CPU kind, and where it is stored."""

    gflops: float
    source: str


@dataclass(frozen=True)
class RunEstimate:
    """One planned run's estimated wall time (None: no stored run to go by) and how it was made."""

    key: str
    seconds: float | None
    source: str  # the stored runs it goes by
    scaling: str  # how their time was brought to this machine
    rough: str  # why the estimate is rough; "" when it is not


@dataclass(frozen=True)
class PlanEstimate:
    """The estimates of the runs to train, on this machine."""

    runs: list[RunEstimate]
    here: CpuKind

    @property
    def seconds(self) -> float:
        """The sum of the runs that have an estimate."""
        return sum(r.seconds for r in self.runs if r.seconds is not None)

    @property
    def unknown(self) -> list[RunEstimate]:
        """The runs without an estimate."""
        return [r for r in self.runs if r.seconds is None]

    @property
    def rough(self) -> list[str]:
        """Why the estimate is rough, each reason once; empty when it is not."""
        return _distinct(r.rough for r in self.runs if r.rough)

    def summary(self) -> str:
        """One line: the total, for how many runs, rough or not."""
        if not self.runs:
            return "estimated wall time: nothing to train"
        known = len(self.runs) - len(self.unknown)
        text = f"estimated wall time on this machine ({self.here.text}): "
        text += f"~{duration(self.seconds)} for {known} run(s)" if known else "unknown"
        if self.unknown:
            text += f"; {len(self.unknown)} run(s) without an estimate ({self.unknown[0].source})"
        return text + (" (rough)" if self.rough and known else "")

    def lines(self) -> list[str]:
        """The summary, then how it was made: the stored runs, the scaling, why rough, what is not counted."""
        lines = [self.summary()]
        known = [r for r in self.runs if r.seconds is not None]
        if not known:
            return lines
        lines += [f"  from {source}" for source in _distinct(r.source for r in known)]
        lines += [f"  {scaling}" for scaling in _distinct(r.scaling for r in known)]
        lines += [f"  rough: {why}" for why in self.rough]
        return lines + ["  not counted: each run's process start and imports"]


def duration(seconds: float) -> str:
    """A wall time in the unit that reads best: `40 s`, `12 min`, `2.3 h`."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def this_machine() -> CpuKind:
    """This machine's kind, as a run record made here would store it."""
    from .hardware import cpu_description, device_name

    return CpuKind.of({"device": device_name(), "cpu": cpu_description()})


@functools.lru_cache(maxsize=None)
def measure_matmul_gflops(dtype: str) -> float:
    """This machine's GFLOP/s of the probe GEMM in dtype (fp32, bf16): a short measurement, once per process."""
    from .flops import matmul_flops_per_second
    from .hardware import DTYPES

    return matmul_flops_per_second(*PROBE_SHAPE, DTYPES[dtype], min_seconds=PROBE_SECONDS) / 1e9


def stored_matmul(folders: Iterable[Path]) -> dict[tuple[CpuKind, str], MatmulFigure]:
    """The matmul GFLOP/s per CPU kind and dtype that benchmark records (JSON with `cpu` and `peak_gflops`) hold.

    The probe's own shape where a record stores it, else the record's peak (its best shape); the first record
    (by folder, then name) with the probe shape wins, else the first with a peak.
    """
    figures: dict[tuple[CpuKind, str], MatmulFigure] = {}
    for folder in folders:
        for path in sorted(Path(folder).glob("*.json")):
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if not isinstance(record, dict) or "cpu" not in record or "peak_gflops" not in record:
                continue
            kind = CpuKind.of({"device": (record.get("env") or {}).get("device", ""), "cpu": record["cpu"]})
            for dtype, peak in record["peak_gflops"].items():
                shape = ((record.get("peaks_by_shape") or {}).get(dtype) or {}).get("shapes", {}).get(PROBE_KEY)
                figure = MatmulFigure(shape or peak, f"{path}, {PROBE_KEY if shape else 'its peak'}")
                held = figures.get((kind, dtype))
                if held is None or (shape and not held.source.endswith(PROBE_KEY)):
                    figures[kind, dtype] = figure
    return figures


def _record_features(record: RunResult) -> dict[str, Any]:
    config = record.config or {}
    return {"group": record.group, "model": record.model, "method": record.method,
            "precision": record.precision_mode or config.get("precision"), "max_length": config.get("max_length"),
            "scores_test": config.get("evaluate_test", True)}


def _run_features(run: ResolvedRun) -> dict[str, Any]:
    return {"group": run.group, "model": run.model_id, "method": run.config.method, "precision": run.precision.name,
            "max_length": run.config.max_length, "scores_test": run.config.evaluate_test}


def _reviews(run: ResolvedRun) -> tuple[float, int]:
    """(training samples: reviews × epochs, test reviews scored) of a run."""
    config = run.config
    train = config.train_size if config.train_size is not None else IMDB_SPLIT_REVIEWS - config.val_size
    test = (config.eval_size if config.eval_size is not None else IMDB_SPLIT_REVIEWS) if config.evaluate_test else 0
    return train * config.epochs, test


def _distinct(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


class Estimator:
    """Estimates runs from stored records and matmul figures; measures this CPU (once per dtype) only when needed."""

    def __init__(self, records: Iterable[RunResult], matmul: dict[tuple[CpuKind, str], MatmulFigure],
                 here: CpuKind | None = None, probe: Callable[[str], float] | None = None,
                 native: frozenset[str] | None = None):
        from .hardware import native_precisions

        seen: dict[str, RunResult] = {}
        for record in records:  # a run copied into several folders is one measurement
            if record.status == "ok" and record.train_samples_per_s:
                seen.setdefault(record.key, record)
        self.records = [(record, _record_features(record)) for record in seen.values()]
        self.matmul = matmul
        self.here = here or this_machine()
        self.probe = probe or measure_matmul_gflops
        self.native = native if native is not None else native_precisions()

    def plan(self, runs: Iterable[ResolvedRun]) -> PlanEstimate:
        """The estimate of each run."""
        return PlanEstimate([self.run(run) for run in runs], self.here)

    def run(self, run: ResolvedRun) -> RunEstimate:
        """One run's estimate: the closest stored runs' time for its reviews, scaled to this machine."""
        wanted = _run_features(run)
        for fields, what, loose in MATCHES:
            matched = [record for record, features in self.records
                       if all(features[name] == wanted[name] for name in fields)]
            if matched:
                break
        else:
            return RunEstimate(run.key, None, f"no stored run of {wanted['model']} in {wanted['precision']} at "
                               f"length {wanted['max_length']}", "", "")
        kind, matched = self._closest_kind(matched, wanted["precision"])
        stretch = 1.0  # another max length: time taken as proportional to it
        if "max_length" not in fields:
            length = min({r.config.get("max_length") for r in matched}, key=lambda n: abs(n - wanted["max_length"]))
            matched = [r for r in matched if r.config.get("max_length") == length]
            stretch = wanted["max_length"] / length
        train_rate = statistics.mean(r.train_samples_per_s for r in matched)
        eval_rates = [r.eval_samples_per_s for r in matched if r.eval_samples_per_s]
        load_s = statistics.mean(r.load_time_s or 0.0 for r in matched)
        samples, test = _reviews(run)
        seconds, rough = samples / train_rate * stretch + load_s, [loose.format(**wanted)] if loose else []
        if test and not eval_rates:  # tuning runs score no test set: scoring costs about the same for any method
            eval_rates = self._evaluation_rates(wanted, kind, matched[0].config.get("max_length"))
            if eval_rates:
                rough.append("no stored {method} evaluation: other methods' evaluation rate".format(**wanted))
        if test and eval_rates:
            seconds += test / statistics.mean(eval_rates) * stretch
        elif test:
            rough.append("no stored evaluation rate: test evaluation not counted")
        at = f"{wanted['precision']} at length {matched[0].config.get('max_length')}"
        what = what.format(label=run.label, at=at, **wanted)
        source = (f"{len(matched)} stored run(s) of {what} on {kind.text}: {train_rate:.1f} training"
                  + (f", {statistics.mean(eval_rates):.0f} evaluation" if eval_rates else "") + " samples/s")
        factor, scaling, why = self._scale(kind, wanted["precision"])
        return RunEstimate(run.key, seconds / factor, source, scaling, "; ".join(rough + ([why] if why else [])))

    def _evaluation_rates(self, wanted: dict[str, Any], kind: CpuKind, length: int | None) -> list[float]:
        """The evaluation samples/s of stored runs of any method with this model, precision and length on `kind`."""
        return [record.eval_samples_per_s for record, features in self.records
                if record.eval_samples_per_s and CpuKind.of(record.env or {}) == kind and features["model"] ==
                wanted["model"] and features["precision"] == wanted["precision"] and features["max_length"] == length]

    def _closest_kind(self, matched: list[RunResult], dtype: str) -> tuple[CpuKind, list[RunResult]]:
        """The stored runs of one CPU kind: this machine's, else one with a stored matmul figure, else the most."""
        by_kind: dict[CpuKind, list[RunResult]] = {}
        for record in matched:
            by_kind.setdefault(CpuKind.of(record.env or {}), []).append(record)
        kind = max(by_kind, key=lambda k: (k == self.here, (k, dtype) in self.matmul, len(by_kind[k])))
        return kind, by_kind[kind]

    def _scale(self, kind: CpuKind, dtype: str) -> tuple[float, str, str]:
        """(this machine's speed over theirs, how, why rough or "") for runs of dtype measured on `kind`."""
        if kind == self.here:
            return 1.0, "measured on this kind of machine: not scaled", ""
        if not self.here.on_cpu or not kind.on_cpu:
            return 1.0, f"not scaled: measured on {kind.text}, trains on {self.here.text}", "another kind of device"
        figure = self.matmul.get((kind, dtype))
        if figure is None:
            return 1.0, f"not scaled to this CPU: measured on {kind.text}", \
                f"no {dtype} matmul figure stored for {kind.text}"
        here = self.probe(dtype)
        factor = here / figure.gflops
        scaling = (f"{dtype} runs scaled ×{1 / factor:.2f} in time: this CPU's {dtype} matmul {here:.1f} GFLOP/s "
                   f"({PROBE_KEY}, measured now) against {figure.gflops:.1f} GFLOP/s on {kind.text} ({figure.source})")
        rough = "" if dtype in self.native else f"{dtype} is not native here: matmul scaling overstates the slowdown"
        return factor, scaling, rough


def estimator(roots: Iterable[Path]) -> Estimator:
    """An estimator from every run and benchmark record under these results folders (an absent one is skipped)."""
    from .experiments import experiment_folders
    from .results import read_results

    records: list[RunResult] = []
    benchmarks = []
    distinct: dict[Path, Path] = {}
    for root in roots:  # each folder once, as first named
        distinct.setdefault(Path(root).resolve(), Path(root))
    for root in distinct.values():
        records += [r for folder in experiment_folders(root) for r in read_results(folder, keep_aside=False)]
        benchmarks.append(root / "benchmarks")
    return Estimator(records, stored_matmul(benchmarks))
