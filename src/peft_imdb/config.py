"""Run configuration and the hardware profiles that pick its defaults."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .errors import UserError

METHODS = ("full", "lora", "qlora", "ia3")

# Default learning rate per profile and method, with the evidence for each:
# - "gpu" (roberta-base-class models, the Colab T4 profile): values from the literature.
#   Full FT 2e-5 (RoBERTa paper, GLUE fine-tuning 1e-5..3e-5); LoRA 4e-4 (LoRA paper,
#   roberta-base GLUE 4e-4..5e-4); QLoRA 2e-4 (QLoRA paper); IA3 3e-3 (T-Few/(IA)^3 paper
#   uses 3e-3). One shared 2e-5 is what left IA3 6 points behind in the reference studies.
# - "cpu" (the offline all-MiniLM-L6-v2 default): the best of a measured sweep, one seed each, on
#   1000 train / 1000 test reviews, 1 epoch, max length 128 (`bash scripts/lr_sweep.sh`; records and
#   table in results/sweeps/lr_cpu/): full {2e-5, 5e-5, 1e-4}, LoRA and QLoRA {5e-4, 2e-3, 5e-3},
#   IA3 {1e-2, 3e-2, 6e-2}. QLoRA diverged at 5e-3; 2e-5 left every method far below the others.
LEARNING_RATES: dict[str, dict[str, float]] = {
    "gpu": {"full": 2e-5, "lora": 4e-4, "qlora": 2e-4, "ia3": 3e-3},
    "cpu": {"full": 1e-4, "lora": 2e-3, "qlora": 2e-3, "ia3": 3e-2},
}


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


PROFILES: dict[str, Profile] = {
    # The reference studies' setting: roberta-base, 3000/2000, 3 epochs, L=256, batch 8.
    "colab-t4": Profile("colab-t4", "roberta", 3000, 2000, 500, 3, 256, 8, 32, "gpu"),
    # The committed CPU study: about 3-5 minutes per run on 2 CPU cores with the offline pretrained model.
    "cpu": Profile("cpu", "minilm", 2000, 2000, 200, 1, 128, 8, 32, "cpu"),
    # Seconds per method: for tests and notebook smoke runs.
    "smoke": Profile("smoke", "minilm", 64, 64, 32, 1, 64, 8, 32, "cpu"),
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


def default_lr(method: str, lr_table: str) -> float:
    """Return the documented default learning rate of a method under a profile's lr table."""
    return LEARNING_RATES[lr_table][method]


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
    lr_table: str = "cpu"
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    target_modules: list[str] | None = None  # None: the architecture's preset
    gradient_accumulation_steps: int = 1
    gradient_checkpointing: bool = False
    qlora_compute_dtype: str | None = None  # None: from the hardware (bf16 >= cc 8.0, fp16, fp32 on CPU)
    optim: str | None = None  # None: the Trainer's AdamW; "paged_adamw_8bit" saves memory for QLoRA on CUDA
    # "head_tail" keeps the first quarter and the last three quarters of max_length tokens; it beat "head"
    # on IMDb here (results/truncation/, README) as in Sun et al. 2019.
    truncation: str = "head_tail"
    group_by_length: bool = True  # batches of similar length in training, length-sorted evaluation
    trust_remote_code: bool = False
    data_dir: str | None = field(default=None, compare=False)  # where, not what: not in the key
    resume: bool = field(default=False, compare=False)  # checkpoint each epoch, go on from the last one

    def __post_init__(self) -> None:
        self.epochs = float(self.epochs)  # 1 and 1.0 are the same run: one type, one key
        if self.method not in METHODS:
            raise UserError(f"unknown method {self.method!r}; valid methods: {', '.join(METHODS)}")
        if self.max_length <= 0:
            raise UserError(f"--max-length must be positive, got {self.max_length}")
        for name in ("train_size", "eval_size"):
            value = getattr(self, name)
            if value is not None and value < 2:
                raise UserError(f"--{name.replace('_', '-')} must be at least 2 (one per label), got {value}")
        if self.val_size < 0:
            raise UserError(f"--val-size must be 0 or more, got {self.val_size}")
        if self.epochs <= 0 or self.batch_size <= 0:
            raise UserError("--epochs and --batch-size must be positive")
        if self.qlora_compute_dtype not in (None, "fp32", "fp16", "bf16"):
            raise UserError(f"--qlora-compute-dtype must be fp32, fp16 or bf16, got {self.qlora_compute_dtype!r}")
        if self.truncation not in ("head", "head_tail"):
            raise UserError(f"--truncation must be head or head_tail, got {self.truncation!r}")
        if self.lr_table not in LEARNING_RATES:
            raise UserError(f"unknown lr table {self.lr_table!r}; use one of {', '.join(LEARNING_RATES)}")

    @property
    def learning_rate(self) -> float:
        """The learning rate this run uses: the explicit one, else the method's default."""
        return self.lr if self.lr is not None else default_lr(self.method, self.lr_table)

    @classmethod
    def from_profile(cls, profile: Profile, method: str, **overrides: Any) -> "RunConfig":
        """Build a config from a profile's defaults, with explicit overrides."""
        base = dict(
            model=profile.model, method=method, train_size=profile.train_size,
            eval_size=profile.eval_size, val_size=profile.val_size, epochs=profile.epochs,
            max_length=profile.max_length, batch_size=profile.batch_size,
            eval_batch_size=profile.eval_batch_size, lr_table=profile.lr_table,
        )
        base.update(overrides)
        return cls(**base)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data view of the config (JSON-able)."""
        return asdict(self)

    def key(self) -> str:
        """Stable identity of the run: model/method/seed plus a hash of everything else that matters."""
        identity = {f.name: getattr(self, f.name) for f in fields(self) if f.compare}
        identity["lr"] = self.learning_rate
        digest = hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:10]
        model = self.model.rstrip("/").replace("/", "--").replace(os.sep, "--")
        return f"{model}__{self.method}__seed{self.seed}__{digest}"
