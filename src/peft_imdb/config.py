"""Run configuration, its identity (what determines a run), and the hardware profiles that pick its defaults."""

from __future__ import annotations

import os
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

from .errors import UserError
from .methods import get_method


@dataclass(frozen=True)
class Profile:
    """Defaults for one kind of machine: model, data sizes, schedule."""

    name: str
    model: str
    train_size: int | None  # None = the whole 25k train split
    eval_size: int | None
    val_size: int
    epochs: float
    max_length: int
    batch_size: int
    eval_batch_size: int
    lr_table: str
    store: str = "study"  # where its runs go by default (stores.py): "scratch" keeps them out of the committed study
    # The precision its runs ask for unless told otherwise: `auto` follows the hardware; a study states one, so
    # that every run of it trains alike on whichever machine it lands (fp32 runs natively on every CPU).
    precision: str = "auto"


PROFILES: dict[str, Profile] = {
    # The reference studies' setting: roberta-base, 3000/2000, 3 epochs, L=256, batch 8.
    "colab-t4": Profile("colab-t4", "roberta", 3000, 2000, 500, 3, 256, 8, 32, "gpu"),
    # The committed CPU study: a few minutes per run on 2 CPU cores with the offline pretrained model, scored on
    # 5000 test reviews no earlier study scored (RunConfig.test_reviews).
    "cpu": Profile("cpu", "minilm", 2000, 5000, 200, 1, 128, 8, 32, "cpu", precision="fp32"),
    # Seconds per method: for tests and notebook smoke runs; never part of the committed study.
    "smoke": Profile("smoke", "minilm", 64, 64, 32, 1, 64, 8, 32, "cpu", store="scratch", precision="fp32"),
}


def detect_profile() -> Profile:
    """Return the profile named by PEFT_IMDB_PROFILE, else colab-t4 with CUDA, else cpu."""
    name = os.environ.get("PEFT_IMDB_PROFILE")
    if name:
        if name not in PROFILES:
            raise UserError(
                f"PEFT_IMDB_PROFILE={name!r} is not a profile; use one of {', '.join(PROFILES)}"
            )
        return PROFILES[name]
    import torch

    return PROFILES["colab-t4" if torch.cuda.is_available() else "cpu"]


SAMPLERS = ("nested", "independent")  # how subsets are drawn (data.balanced_indices)
TEST_POOLS = ("fresh", "all")  # which test reviews a run scores, which train reviews it learns from (make_splits)


@dataclass
class RunConfig:
    """Everything that defines one training run; two runs with equal configs are the same run."""

    model: str
    method: str
    seed: int = 0
    train_size: int | None = 1000
    eval_size: int | None = 1000
    val_size: int = 200
    data_seed: int = 42  # fixed across seeds and methods: every run sees the same reviews
    epochs: float = 1
    max_length: int = 128
    batch_size: int = 8
    eval_batch_size: int = 32
    lr: float | None = None  # None: the method's default for lr_table
    lr_table: str = field(default="cpu", compare=False)  # only picks the default lr, which is in the identity
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    # The method's adapter settings in peft's own names (r, lora_alpha, target_modules, ...), over the
    # method's registry defaults and the architecture's preset targets.
    adapter: dict[str, Any] = field(default_factory=dict)
    gradient_accumulation_steps: int = 1
    gradient_checkpointing: bool = False
    # fp32, bf16, fp16, or auto (the machine's choice, resolved per method when the run is resolved: resolved.py).
    precision: str = "fp32"
    qlora_compute_dtype: str | None = None  # None: from hardware.qlora_compute_dtype (follows the precision)
    optim: str | None = None  # None: the Trainer's AdamW; "paged_adamw_8bit" saves memory for QLoRA on CUDA
    # "head_tail" keeps the first quarter and the last three quarters of max_length tokens (Sun et al. 2019:
    # a review's verdict is often at its end); chosen over "head" on validation reviews (sweep.CHOICES).
    truncation: str = "head_tail"
    group_by_length: bool = True  # batches of similar length in training, length-sorted evaluation
    # False: every dropout of the model and its adapter at p=0 (no random masks to draw: a faster step on CPU),
    # chosen over the model's and method's own dropout on validation reviews (sweep.CHOICES["dropout"]).
    dropout: bool = False
    # How subsets are drawn (SAMPLERS): "nested" keeps each smaller subset inside the next (per label, for a
    # fixed data_seed), so runs at different sizes share their reviews; "independent" is the earlier draw.
    sampler: str = "nested"
    # Which test reviews a run may score (TEST_POOLS): "fresh" leaves out every test review an earlier
    # study scored (data.RETIRED_TEST_DRAWS) and draws training and validation reviews only among those whose
    # text the test split lacks (as tuning does); "all" draws from the whole of both splits.
    test_reviews: str = "fresh"
    # False for tuning (sweep.py): the run never draws, sees or scores a test review; eval_size is then 0.
    evaluate_test: bool = True
    # Also score every test review the run's test_reviews pool holds (not only its eval_size subset), stored apart
    # (predictions/remaining/): for comparison with figures published on the whole test split.
    score_remaining: bool = False
    trust_remote_code: bool = False
    data_dir: str | None = field(default=None, compare=False)  # where, not what: not in the key
    resume: bool = field(default=False, compare=False)  # checkpoint each epoch, go on from the last one

    def __post_init__(self) -> None:
        self.epochs = float(self.epochs)  # 1 and 1.0 are the same run: one type, one key
        method = get_method(self.method)  # an unknown name is a clear error here
        if self.max_length <= 0:
            raise UserError(f"--max-length must be positive, got {self.max_length}")
        for name in ("train_size", "eval_size"):
            value = getattr(self, name)
            if value is not None and value < 2 and not (name == "eval_size" and value == 0 and not self.evaluate_test):
                raise UserError(f"--{name.replace('_', '-')} must be at least 2 (one per label), got {value}")
        if self.score_remaining and not self.evaluate_test:
            raise UserError("a tuning run scores no test review: it cannot score the remaining test reviews")
        if not self.evaluate_test and (self.eval_size != 0 or self.val_size < 2):
            raise UserError("a tuning run (no test evaluation) takes --eval-size 0 and a validation set of 2 or more")
        if self.val_size < 0:
            raise UserError(f"--val-size must be 0 or more, got {self.val_size}")
        if self.epochs <= 0 or self.batch_size <= 0:
            raise UserError("--epochs and --batch-size must be positive")
        if self.qlora_compute_dtype not in (None, "fp32", "fp16", "bf16"):
            raise UserError(f"--qlora-compute-dtype must be fp32, fp16 or bf16, got {self.qlora_compute_dtype!r}")
        if self.sampler not in SAMPLERS:
            raise UserError(f"--sampler must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}")
        if self.test_reviews not in TEST_POOLS:
            raise UserError(f"--test-reviews must be one of {', '.join(TEST_POOLS)}, got {self.test_reviews!r}")
        if self.truncation not in ("head", "head_tail"):
            raise UserError(f"--truncation must be head or head_tail, got {self.truncation!r}")
        if self.lr_table not in method.learning_rates:
            raise UserError(f"unknown lr table {self.lr_table!r}; use one of {', '.join(method.learning_rates)}")
        if self.precision not in ("auto", "fast", "fp32", "bf16", "fp16"):
            raise UserError(f"--precision must be auto, fp32, bf16 or fp16, got {self.precision!r}")

    @property
    def learning_rate(self) -> float:
        """The learning rate this run uses: the explicit one, else the method's default."""
        return self.lr if self.lr is not None else get_method(self.method).learning_rates[self.lr_table]

    @classmethod
    def from_profile(cls, profile: Profile, method: str, **overrides: Any) -> "RunConfig":
        """Build a config from a profile's defaults, with explicit overrides; the profile's precision unless given."""
        base = dict(
            model=profile.model, method=method, train_size=profile.train_size,
            eval_size=profile.eval_size, val_size=profile.val_size, epochs=profile.epochs,
            max_length=profile.max_length, batch_size=profile.batch_size,
            eval_batch_size=profile.eval_batch_size, lr_table=profile.lr_table,
        )
        base.update(overrides)
        if base.get("precision") is None:
            base["precision"] = profile.precision
        if base.get("lr") is None:  # stored resolved: a later change of the method's default renames no run
            base["lr"] = get_method(method).learning_rates[base["lr_table"]]
        return cls(**base)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data view of the config (JSON-able)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        """Inverse of to_dict; keys of other versions are ignored, and a field a record lacks (it was stored before
        the field existed) takes its IDENTITY_BASELINE value: what every run had then, whatever the default now."""
        known = {f.name for f in fields(cls)}
        missing = {k: v for k, v in IDENTITY_BASELINE.items() if k not in data}
        return cls(**{**missing, **{k: v for k, v in data.items() if k in known}})


def field_default(name: str, cls: type | None = None) -> Any:
    """Today's default of a field of RunConfig (or of `cls`, a config class), not its IDENTITY_BASELINE value."""
    spec = next(spec for spec in fields(cls or RunConfig) if spec.name == name)
    return spec.default_factory() if spec.default_factory is not MISSING else spec.default


# What every run had before a setting could be chosen, or when run names were introduced: a run's identity (its
# key) holds the settings that differ from these values (resolved.py). Frozen: never edit an entry. Changing a
# default in RunConfig then renames the runs at the new default and keeps every stored run's name, so runs of two
# recipes are never merged. A new field gets an entry: the value runs had before it existed.
IDENTITY_BASELINE: dict[str, Any] = {
    "seed": 0, "train_size": 1000, "eval_size": 1000, "val_size": 200, "data_seed": 42, "epochs": 1.0,
    "max_length": 128, "batch_size": 8, "eval_batch_size": 32, "weight_decay": 0.01, "warmup_ratio": 0.06,
    "gradient_accumulation_steps": 1, "gradient_checkpointing": False, "precision": "fp32",
    "qlora_compute_dtype": None, "optim": None, "truncation": "head_tail", "group_by_length": True,
    "dropout": True, "evaluate_test": True, "trust_remote_code": False, "sampler": "independent",
    "test_reviews": "all", "score_remaining": False,
}
