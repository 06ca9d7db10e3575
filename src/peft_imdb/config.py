"""Run configuration, its identity (what determines a run), and the hardware profiles that pick its defaults."""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import UserError
from .methods import get_method, non_default_fields, plain_fields


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
    precision: str = "fp32"  # the resolved training precision (fp32, bf16, fp16): a bf16 run stays one
    qlora_compute_dtype: str | None = None  # None: from hardware.qlora_compute_dtype (follows the precision)
    optim: str | None = None  # None: the Trainer's AdamW; "paged_adamw_8bit" saves memory for QLoRA on CUDA
    # "head_tail" keeps the first quarter and the last three quarters of max_length tokens (Sun et al. 2019:
    # a review's verdict is often at its end). Not yet compared with "head" on validation reviews.
    truncation: str = "head_tail"
    group_by_length: bool = True  # batches of similar length in training, length-sorted evaluation
    # False: every dropout of the model and its adapter at p=0 (no random masks to draw: a faster step on CPU).
    # Compared with the default on validation reviews (sweep.CHOICES["dropout"]).
    dropout: bool = True
    # False for tuning (sweep.py): the run never draws, sees or scores a test review; eval_size is then 0.
    evaluate_test: bool = True
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
        if not self.evaluate_test and (self.eval_size != 0 or self.val_size < 2):
            raise UserError("a tuning run (no test evaluation) takes --eval-size 0 and a validation set of 2 or more")
        if self.val_size < 0:
            raise UserError(f"--val-size must be 0 or more, got {self.val_size}")
        if self.epochs <= 0 or self.batch_size <= 0:
            raise UserError("--epochs and --batch-size must be positive")
        if self.qlora_compute_dtype not in (None, "fp32", "fp16", "bf16"):
            raise UserError(f"--qlora-compute-dtype must be fp32, fp16 or bf16, got {self.qlora_compute_dtype!r}")
        if self.truncation not in ("head", "head_tail"):
            raise UserError(f"--truncation must be head or head_tail, got {self.truncation!r}")
        if self.lr_table not in method.learning_rates:
            raise UserError(f"unknown lr table {self.lr_table!r}; use one of {', '.join(method.learning_rates)}")
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise UserError(f"--precision must resolve to fp32, bf16 or fp16, got {self.precision!r}")

    @property
    def learning_rate(self) -> float:
        """The learning rate this run uses: the explicit one, else the method's default."""
        return self.lr if self.lr is not None else get_method(self.method).learning_rates[self.lr_table]

    @classmethod
    def from_profile(cls, profile: Profile, method: str, **overrides: Any) -> "RunConfig":
        """Build a config from a profile's defaults, with explicit overrides; precision resolved from the hardware."""
        from .hardware import resolve_precision

        base = dict(
            model=profile.model, method=method, train_size=profile.train_size,
            eval_size=profile.eval_size, val_size=profile.val_size, epochs=profile.epochs,
            max_length=profile.max_length, batch_size=profile.batch_size,
            eval_batch_size=profile.eval_batch_size, lr_table=profile.lr_table,
        )
        base.update(overrides)
        if base.get("precision") in (None, "auto"):
            base["precision"] = resolve_precision("auto", get_method(method).cpu_bf16)
        if base.get("lr") is None:  # stored resolved: a later change of the method's default renames no run
            base["lr"] = get_method(method).learning_rates[base["lr_table"]]
        return cls(**base)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data view of the config (JSON-able)."""
        return asdict(self)

    def peft_config(self):
        """The method's peft config on this model's architecture (None for full fine-tuning)."""
        architecture = model_type(self.model, self.trust_remote_code)
        return get_method(self.method).peft_config(architecture, self.adapter, run=self)

    def identity(self) -> dict[str, Any]:
        """What determines the run: model, method, lr, the settings away from their defaults, the peft config.

        A setting at its dataclass default, and a peft field at its class default, stays out: adding a field
        with a default renames no stored run. Defaults are therefore never changed here; profiles set values.
        """
        chosen = {"model": model_id(self.model), "method": self.method, "lr": self.learning_rate}
        for spec in fields(self):
            if not spec.compare or spec.name in chosen or spec.name == "adapter":
                continue
            if getattr(self, spec.name) != _default(spec):
                chosen[spec.name] = getattr(self, spec.name)
        adapter = non_default_fields(self.peft_config())
        if adapter:
            chosen["adapter"] = adapter
        return chosen

    def label(self) -> str:
        """The method's name and what sets the run apart from the method's defaults at its data setting: `lora (r=16)`."""
        # The data setting heads its table; precision has a column of its own (it is the machine's choice).
        data_setting = {f.name for f in fields(Profile)} | {"model", "method", "seed", "adapter", "lr", "data_dir",
                                                            "precision"}
        reset = {f.name: _default(f) for f in fields(self) if f.compare and f.name not in data_setting}
        default = replace(self, adapter={}, lr=None, **reset)
        mine, base = self.identity(), default.identity()
        parts = [f"{name}={_short(mine.get(name))}" for name in sorted(set(mine) | set(base))
                 if name != "adapter" and mine.get(name) != base.get(name)]
        if self.adapter:  # every peft field that differs, with the value the run really had
            a, b = (plain_fields(c.peft_config()) for c in (self, default))
            parts += [f"{k}={_short(a.get(k))}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        return self.method + (f" ({', '.join(sorted(parts))})" if parts else "")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        """Inverse of to_dict; keys of other versions are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def group(self) -> str:
        """Hash of the identity without the seed: the runs of one summary row share it."""
        identity = {k: v for k, v in self.identity().items() if k != "seed"}
        return hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:10]

    def key(self) -> str:
        """The run's name in the store: model, method and seed for reading, then the group hash."""
        slug = model_id(self.model).replace("/", "--")
        return f"{slug}__{self.method}__seed{self.seed}__{self.group()}"


def _default(spec) -> Any:
    """A dataclass field's default value."""
    return spec.default_factory() if spec.default_factory is not MISSING else spec.default


def _short(value: Any) -> str:
    """A setting's value as a label shows it: lists comma-joined, floats short."""
    if isinstance(value, list):
        return ",".join(map(str, value)) or "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


@functools.lru_cache(maxsize=None)
def model_type(model: str, trust_remote_code: bool = False) -> str:
    """The architecture (config.model_type) of a model name, alias or folder."""
    from .models import load_config

    return load_config(model, trust_remote_code).model_type


@functools.lru_cache(maxsize=None)
def model_id(model: str) -> str:
    """A machine-independent name: an alias or hub id as given; a folder as its name + a hash of its contents.

    The hash covers config.json and the names of the weight files, so the same model installed in two
    places is one model, and another model in a folder of the same name is another.
    """
    path = Path(model).expanduser()
    if not path.is_dir():
        return model
    config = path / "config.json"
    digest = hashlib.sha1(config.read_bytes() if config.is_file() else b"")
    for name in sorted(p.name for p in path.iterdir() if p.suffix in (".safetensors", ".bin")):
        digest.update(name.encode())
    return f"{path.resolve().name}-{digest.hexdigest()[:8]}"
