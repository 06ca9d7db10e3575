"""The method registry: every fine-tuning method as one record of data, read by everything that lists methods.

A method says which peft config class builds its adapter (none for full fine-tuning), its default
hyperparameters in peft's own names, which layers it adapts on each architecture, whether its base
model loads in 4-bit, its learning rate per profile, its label and colour, and the formula for the
parameters it trains. Adding a method is one `register(Method(...))` call.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import UserError, first_line
from .peft_fields import field_names, typed_fields
from .targets import IA3_TARGETS, LAST_TOKEN_CLASSIFIERS, LORA_TARGETS, head_modules, preset

# The comparisons methods belong to: the study's four ("core"), the six added next ("added"), and the further
# methods and LoRA variants peft ships for encoder classifiers ("further"). Each is tuned by its own sweep, trained
# by its own experiment and adjusted for multiple comparisons (Holm) on its own.
FAMILIES = ("core", "added", "further")


@dataclass(frozen=True)
class LayerCount:
    """Trainable parameters an adapter adds to one linear layer, and the formula that gives them."""

    params: int
    formula: str
    frozen: int = 0  # parameters the adapter adds but does not train (AdaLoRA's rank counter)


@dataclass(frozen=True)
class PartCount:
    """Trainable parameters of a part that is not an adapted linear layer (a soft prompt, biases, the head)."""

    # As the formula table names its rows: "adapter on ..." (parameters added to the model, e.g. a soft prompt),
    # "head: ..." (trained in full), or anything else for pretrained parameters that are trained (BitFit's biases).
    part: str
    layers: int | str
    formula: str
    params: int


def layer_dims(module) -> tuple[int, int]:
    """(d_in, d_out) of a linear layer; transformers' Conv1D (GPT-2) stores its weight as (d_in, d_out)."""
    if hasattr(module, "in_features"):
        return module.in_features, module.out_features
    return tuple(module.weight.shape)


def lora_layer(module, name: str, config) -> LayerCount:
    """LoRA: two rank-r factors, r * (d_in + d_out) per adapted weight matrix; DoRA adds a magnitude of d_out."""
    r, (d_in, d_out) = config.r, layer_dims(module)
    if getattr(config, "use_dora", False):
        return LayerCount(r * (d_in + d_out) + d_out,
                          f"r·(d_in + d_out) + d_out = {r}·({d_in} + {d_out}) + {d_out}")
    return LayerCount(r * (d_in + d_out), f"r·(d_in + d_out) = {r}·({d_in} + {d_out})")


def adalora_layer(module, name: str, config) -> LayerCount:
    """AdaLoRA: P (r×d_in), Q (d_out×r) and the singular values Λ (r) at the initial rank; pruned ranks stay as zeros."""
    r, (d_in, d_out) = config.init_r, layer_dims(module)
    return LayerCount(r * (d_in + d_out + 1), f"init_r·(d_in + d_out + 1) = {r}·({d_in} + {d_out} + 1)", frozen=1)


def vera_layer(module, name: str, config) -> LayerCount:
    """VeRA: the shared random A, B are frozen buffers; each layer trains λ_d (r) and λ_b (d_out)."""
    r, (_, d_out) = config.r, layer_dims(module)
    return LayerCount(r + d_out, f"r + d_out = {r} + {d_out}")


def loha_layer(module, name: str, config) -> LayerCount:
    """LoHa: the Hadamard product of two rank-r products, 2·r·(d_in + d_out) per adapted weight matrix."""
    r, (d_in, d_out) = config.r, layer_dims(module)
    return LayerCount(2 * r * (d_in + d_out), f"2·r·(d_in + d_out) = 2·{r}·({d_in} + {d_out})")


def ia3_layer(module, name: str, config) -> LayerCount:
    """IA3: one scaling vector, d_in long on feed-forward layers (scales the input), else d_out (the output)."""
    from peft.tuners.tuners_utils import check_target_module_exists

    feedforward = config.feedforward_modules and check_target_module_exists(
        dataclasses.replace(config, target_modules=config.feedforward_modules), name)
    d_in, d_out = layer_dims(module)
    size = d_in if feedforward else d_out
    return LayerCount(size, f"d_in = {size} (feed-forward)" if feedforward else f"d_out = {size}")


def lora_targets(model_type: str) -> dict[str, Any]:
    """LoRA's preset placement: the attention query and value projections."""
    return {"target_modules": preset(LORA_TARGETS, model_type, "lora")}


def ia3_targets(model_type: str) -> dict[str, Any]:
    """IA3's preset placement: keys, values and the feed-forward output (its feed-forward subset)."""
    targets = preset({k: v[0] for k, v in IA3_TARGETS.items()}, model_type, "ia3")
    return {"target_modules": targets, "feedforward_modules": list(IA3_TARGETS[model_type][1])}


@dataclass(frozen=True)
class Method:
    """One fine-tuning method as data."""

    name: str
    label: str  # how tables and charts name it
    colour: str  # one colour per method in every figure
    description: str
    learning_rates: Mapping[str, float]  # per profile lr table ("cpu", "gpu")
    lr_grid: Mapping[str, tuple[float, ...]] = field(default_factory=dict)  # the validation sweep's grid, per table
    config_class: str | None = None  # peft config class that builds the adapter; None: no adapter
    defaults: Mapping[str, Any] = field(default_factory=dict)  # adapter hyperparameters, peft's names
    targets: Callable[[str], dict[str, Any]] | None = None  # model_type -> placement fields
    layer_count: Callable[[Any, str, Any], LayerCount] | None = None  # trainable params per adapted layer
    quantized_base: bool = False  # the frozen base loads in 4-bit NF4
    # The method that is this one without the 4-bit base: the study adds it as a control arm with exactly
    # this method's settings (learning rate included), so the 4-bit effect stands alone.
    unquantized_twin: str | None = None
    # Whether `auto` may pick bf16 on a CPU with native bf16: True only where the precision ablation found
    # bf16 *equivalent* to fp32 for this method (results/summary.md, "Ablation: precision"); False keeps fp32.
    cpu_bf16: bool = True
    # Which comparison the method belongs to (FAMILIES): its own Holm family, sweep and experiment, so that adding
    # methods to one family never changes another's verdicts.
    family: str = "core"
    docs: str = ""  # peft's documentation of the method
    # Building the adapter reads the weights (SHiRA draws its sparse mask from them): the formula counts on a model
    # with random weights on the CPU instead of a weightless one on the meta device.
    built_from_weights: bool = False
    # Hooks for methods that need more than a peft config, each a function of the run (or model), not a branch:
    run_fields: Callable[[Any], dict[str, Any]] | None = None  # RunConfig -> peft fields it determines
    callbacks: Callable[[Any], list] | None = None  # RunConfig -> Trainer callbacks the method needs
    prepare: Callable[[Any, str], None] | None = None  # (model, model_type): marks trainable parameters, no peft
    part_count: Callable[[Any, str], list[PartCount]] | None = None  # (model, model_type): formula rows
    # beyond adapted linear layers; the model is the one params.meta_model builds (peft-wrapped where peft is used)
    unsupported: Callable[[Any, Any], str | None] | None = None  # (RunConfig, model config): why it cannot run

    @property
    def core(self) -> bool:
        """One of the study's four methods (highlighted in charts)."""
        return self.family == "core"

    @property
    def count_device(self) -> str:
        """Where the model is built to count this method's parameters: the meta device (no weights), or the CPU
        with random weights where building the adapter reads them (built_from_weights)."""
        return "cpu" if self.built_from_weights else "meta"

    def unavailable(self) -> str | None:
        """Why the installed peft cannot build this method (it lacks the config class, or a field of the defaults),
        or None: such a run is recorded as skipped with this reason."""
        if self.config_class is None:
            return None
        import peft

        cls = getattr(peft, self.config_class, None)
        missing = [name for name in self.defaults if name not in field_names(cls)] if cls is not None else []
        if cls is not None and not missing:
            return None
        lacks = self.config_class if cls is None else f"{self.config_class} field {', '.join(missing)}"
        return f"peft {peft.__version__} has no {lacks}: {self.name} needs a later peft (pip install -U peft)"

    def peft_class(self):
        """The peft config class, or None for a method without an adapter."""
        if self.config_class is None:
            return None
        import peft

        if not hasattr(peft, self.config_class):
            raise UserError(self.unavailable())
        return getattr(peft, self.config_class)

    def peft_config(self, model_type: str, adapter: Mapping[str, Any] | None = None, run=None):
        """The peft config this method trains on an architecture: defaults, preset targets, fields the run
        determines (`run_fields`, given the RunConfig), head, overrides."""
        adapter = dict(adapter or {})
        cls = self.peft_class()
        if cls is None:
            if adapter:
                raise UserError(f"{self.name} has no adapter settings; "
                                f"drop --adapter {' '.join(f'{k}={v}' for k, v in adapter.items())}")
            return None
        from peft import TaskType

        fields_ = {**self.defaults}
        if "target_modules" not in adapter and self.targets is not None:
            fields_.update(self.targets(model_type))
        elif "feedforward_modules" in field_names(cls) and "feedforward_modules" not in adapter:
            # Chosen targets: the feed-forward ones among them keep being treated as feed-forward.
            feedforward = set(IA3_TARGETS.get(model_type, ([], []))[1])
            adapter["feedforward_modules"] = [t for t in adapter["target_modules"] if t in feedforward]
        if self.run_fields is not None and run is not None:
            fields_.update(self.run_fields(run))
        fields_.update(adapter)
        if "modules_to_save" in field_names(cls):  # prompt learning on peft < 0.15 sets its own head
            fields_.setdefault("modules_to_save", head_modules(model_type))
        try:
            return cls(task_type=TaskType.SEQ_CLS, **fields_)
        except (TypeError, ValueError) as exc:
            raise UserError(f"invalid {self.name} adapter settings ({first_line(exc)}); see --adapter in --help") from None


METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Add a method to the registry (replacing one of the same name); return it."""
    if method.family not in FAMILIES:
        raise ValueError(f"{method.name}: family must be one of {', '.join(FAMILIES)}, got {method.family!r}")
    METHODS[method.name] = method
    return method


def get_method(name: str) -> Method:
    """The registered method of this name; a clear error listing the valid names otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        raise UserError(f"unknown method {name!r}; valid methods: {', '.join(METHODS)}") from None


def method_names(core_only: bool = False, families: tuple[str, ...] | None = None) -> list[str]:
    """Registered method names in registry order (the order of every table and chart): all of them, the study's
    four (core_only), or those of `families`."""
    chosen = ("core",) if core_only else families
    return [m.name for m in METHODS.values() if chosen is None or m.family in chosen]


def method_family(method: str) -> str:
    """The comparison a method belongs to (its Holm family); "core" for a name the registry lacks."""
    return METHODS[method].family if method in METHODS else "core"


def parse_adapter(method: str, items: list[str]) -> dict[str, Any]:
    """`key=value` items in peft's names, typed by the method's peft config class; UserError when invalid (or when
    given to a method the installed peft lacks: without items, such a method's run is stored as skipped)."""
    unavailable = get_method(method).unavailable()
    if unavailable:
        if items:
            raise UserError(unavailable)
        return {}
    cls = get_method(method).peft_class()
    if cls is None:
        if items:
            raise UserError(f"{method} has no adapter settings; drop --adapter {' '.join(items)}")
        return {}
    return typed_fields(cls, items)


def takes_shared_adapter(method: str, methods: list[str]) -> bool:
    """Whether adapter settings one command gives to `methods` apply to `method`: all of them when it is the only
    method, else only where it has an adapter (Full FT and BitFit take none)."""
    return len(methods) == 1 or bool(get_method(method).config_class)


def method_adapters(methods: list[str], items: list[str]) -> dict[str, dict[str, Any]]:
    """--adapter items typed per method, as every command gives them (takes_shared_adapter)."""
    adapters = {}
    for method in methods:
        try:
            adapters[method] = parse_adapter(method, items if takes_shared_adapter(method, methods) else [])
        except UserError as exc:
            hint = "; pass --methods with the methods these settings are for" if len(methods) > 1 else ""
            raise UserError(f"{method}: {exc}{hint}") from None
    return adapters


# Learning rates per profile lr table, with the evidence for each:
# - "gpu" (roberta-base-class models, the Colab T4 profile): values from the literature. Full FT 2e-5
#   (RoBERTa paper, GLUE 1e-5..3e-5); LoRA 4e-4 (LoRA paper, roberta-base GLUE 4e-4..5e-4); QLoRA 2e-4
#   (QLoRA paper); IA3 3e-3 (T-Few/(IA)^3 paper). One shared 2e-5 left IA3 6 points behind in the
#   reference studies.
# - "cpu-first" (the offline all-MiniLM-L6-v2): the picks of the first validation-only sweep over `lr_grid`
#   (`python -m peft_imdb experiment lr-sweep-first`, results/sweeps/lr_cpu_validation/: 2000 train / 1000
#   validation reviews, 2 seeds, bf16, dropout on, no test review drawn), by sweep.PICK_RULE: the centres of the
#   final sweep's grid.
# - "cpu" (the CPU study's rates): the picks of the final sweep at the study's recipe
#   (`python -m peft_imdb experiment lr-sweep`, results/sweeps/lr_final_cpu_validation/), by
#   sweep.NEAR_TIE_RULE. tests/test_protocol.py checks that both tables agree with their sweeps.
register(Method(
    name="full", label="Full FT", colour="#4C72B0",
    description="every weight trained (the reference)",
    learning_rates={"gpu": 2e-5, "cpu": 6e-05, "cpu-first": 6e-05},
    lr_grid={"cpu-first": (3e-5, 6e-5, 1e-4, 2e-4, 4e-4)},
))
register(Method(
    name="lora", label="LoRA", colour="#DD8452",
    description="rank-r updates of the attention query and value projections, head trained",
    learning_rates={"gpu": 4e-4, "cpu": 0.00283, "cpu-first": 0.001},
    lr_grid={"cpu-first": (5e-4, 1e-3, 2e-3, 4e-3, 8e-3)},
    config_class="LoraConfig", defaults={"r": 8, "lora_alpha": 16, "lora_dropout": 0.1},
    targets=lora_targets, layer_count=lora_layer,
))
register(Method(
    name="qlora", label="QLoRA", colour="#55A868",
    description="LoRA on a base model frozen in 4-bit NF4 (double quantization), head kept out of 4-bit",
    learning_rates={"gpu": 2e-4, "cpu": 0.002, "cpu-first": 0.002},
    lr_grid={"cpu-first": (5e-4, 1e-3, 2e-3, 4e-3, 8e-3)},
    config_class="LoraConfig", defaults={"r": 8, "lora_alpha": 16, "lora_dropout": 0.1},
    targets=lora_targets, layer_count=lora_layer, quantized_base=True, unquantized_twin="lora",
))
register(Method(
    name="ia3", label="IA3", colour="#C44E52",
    description="learned scaling vectors on keys, values and the output projections, head trained",
    learning_rates={"gpu": 3e-3, "cpu": 0.0141, "cpu-first": 0.02}, lr_grid={"cpu-first": (3e-3, 1e-2, 2e-2, 4e-2, 8e-2)},
    config_class="IA3Config", targets=ia3_targets, layer_count=ia3_layer,
))


# --- More methods, outside the study's four (family "added"): one entry each, built with peft's own classes ---

# Reviews in the IMDb train split: a run with train_size None trains on all of them but its validation subset.
IMDB_TRAIN_REVIEWS = 25_000


def optimizer_steps(run) -> int:
    """The optimizer steps the Trainer will take for a run on one process (its rule: batches per epoch,
    rounded up, over gradient accumulation, rounded up, at least 1; times the epochs, rounded up)."""
    reviews = run.train_size if run.train_size is not None else IMDB_TRAIN_REVIEWS - run.val_size
    batches = math.ceil(reviews / run.batch_size)
    per_epoch = max(math.ceil(batches / run.gradient_accumulation_steps), 1)
    return math.ceil(run.epochs * per_epoch)


def adalora_schedule(run) -> dict[str, Any]:
    """AdaLoRA's budget schedule, from the run's optimizer steps: `tinit` steps at the initial rank, then the
    budget shrinks to target_r, then `tfinal` steps at the final ranks. The AdaLoRA paper gives both phases as
    step counts per task; 10% and 20% of the run here are this repository's choice, not tuned values."""
    total = optimizer_steps(run)
    return {"total_step": total, "tinit": total // 10, "tfinal": total // 5}


def adalora_callbacks(run) -> list:
    """The Trainer callback that reallocates AdaLoRA's ranks after every optimizer step."""
    from .callbacks import AdaLoraBudget

    return [AdaLoraBudget(adalora_schedule(run)["total_step"])]


def _in_head(name: str, heads: list[str]) -> bool:
    """Whether a parameter belongs to the classification head (the rule params.count_parameters counts by)."""
    return bool(set(name.split(".")[:-1]) & set(heads))


def bitfit_trains(name: str, heads: list[str]) -> bool:
    """BitFit trains every bias term (attention, feed-forward, LayerNorm, embeddings) and the head."""
    return name.endswith("bias") or _in_head(name, heads)


def bitfit_prepare(model, model_type: str) -> None:
    """Freeze every weight but the biases and the classification head (BitFit: Ben Zaken et al., 2022)."""
    heads = head_modules(model_type)
    for name, parameter in model.named_parameters():
        parameter.requires_grad = bitfit_trains(name, heads)


def bitfit_parts(model, model_type: str) -> list[PartCount]:
    """BitFit's formula: one bias vector per layer that has one (d_out of a linear layer, the width of a
    LayerNorm), grouped over the blocks; the head's modules are trained in full."""
    import re
    from collections import defaultdict

    heads = head_modules(model_type)
    modules = dict(model.named_modules())
    groups: dict[tuple[str, str, int], int] = defaultdict(int)
    head_counts: dict[str, int] = defaultdict(int)
    for name, parameter in model.named_parameters():
        if _in_head(name, heads):
            parts = name.split(".")
            top = ".".join(parts[: max(i for i, p in enumerate(parts) if p in heads) + 1])
            head_counts[top] += parameter.numel()
        elif name.endswith("bias"):
            owner = modules[name.rsplit(".", 1)[0]]
            kind = "d_out" if hasattr(owner, "out_features") or type(owner).__name__ == "Conv1D" else "width"
            groups[(re.sub(r"\.\d+\.", ".*.", name.removesuffix(".bias")), f"{type(owner).__name__} {kind}",
                    parameter.numel())] += 1
    rows = [PartCount(f"bias of {pattern}", layers, f"{layers} × {what} = {size}", layers * size)
            for (pattern, what, size), layers in groups.items()]
    rows += [PartCount(f"head: {head}", "", "trained in full", count) for head, count in head_counts.items()]
    return rows


def prompt_parts(model, model_type: str) -> list[PartCount]:
    """Prompt tuning: one trained embedding per virtual token, as wide as the model's token embeddings."""
    config = model.peft_config["default"]
    tokens = config.num_virtual_tokens * config.num_transformer_submodules
    return [PartCount(f"adapter on the input: {tokens} virtual tokens", tokens,
                      f"num_virtual_tokens × hidden = {tokens} × {config.token_dim}", tokens * config.token_dim)]


def prompt_unsupported(run, model_config) -> str | None:
    """Why prompt tuning cannot run this model at this length (None when it can)."""
    tokens = {**get_method(run.method).defaults, **run.adapter}.get("num_virtual_tokens", 0)
    positions = getattr(model_config, "max_position_embeddings", None)
    if positions is not None and run.max_length + tokens > positions:
        return (f"prompt tuning adds {tokens} virtual tokens to reviews of up to {run.max_length} tokens, beyond the "
                f"model's {positions} positions; use --max-length {positions - tokens} or fewer")
    if model_config.model_type in LAST_TOKEN_CLASSIFIERS:
        return (f"{model_config.model_type} classifies from the last non-padding token, which it finds in the input "
                "ids; with a soft prompt peft passes embeddings instead, so the label would be read from padding")
    return None


# Learning rates of the entries below, per profile lr table:
# - "gpu" (roberta-base class): from each method's paper or peft's docs, as noted per entry. They were not
#   measured here.
# - "cpu-first" (all-MiniLM-L6-v2): the picks of the same first validation-only sweep as the four
#   (results/sweeps/lr_cpu_validation/), over each entry's `lr_grid`: four rates about a factor 2 (LoRA-like
#   adapters) or 3 (vectors and prompts) apart, around the closest core method's pick, widened by two rates
#   where the best fell at an end (AdaLoRA and LoHa upwards, BitFit downwards; AdaLoRA, at the top again, by
#   two more).
# - "cpu": the picks of the final sweep (half, once and twice the "cpu-first" pick, 2 seeds), as for the four.
#   Under `--precision auto` these methods run bf16 on a CPU with native bf16 (`cpu_bf16` default): none has
#   a precision ablation of its own; the CPU profile states fp32.
register(Method(
    name="dora", label="DoRA", colour="#8172B3",
    description="LoRA on the direction of each weight plus a trained magnitude per output (weight-decomposed)",
    # gpu: LoRA's 4e-4; DoRA (Liu et al., 2024) trains with LoRA's hyperparameters.
    learning_rates={"gpu": 4e-4, "cpu": 0.004, "cpu-first": 0.002}, lr_grid={"cpu-first": (5e-4, 1e-3, 2e-3, 4e-3)},
    config_class="LoraConfig", defaults={"r": 8, "lora_alpha": 16, "lora_dropout": 0.1, "use_dora": True},
    targets=lora_targets, layer_count=lora_layer, family="added",
))
register(Method(
    name="vera", label="VeRA", colour="#937860",
    description="one pair of frozen random matrices shared by all layers, trained scaling vectors per layer",
    # gpu: 4e-3, the order of the VeRA paper's roberta-base GLUE rates (Kopiczko et al., 2024: about ten
    # times LoRA's, as vectors need larger steps).
    learning_rates={"gpu": 4e-3, "cpu": 0.03, "cpu-first": 0.03}, lr_grid={"cpu-first": (3e-3, 1e-2, 3e-2, 1e-1)},
    config_class="VeraConfig",  # peft's defaults: r 256, projection_prng_key 0, d_initial 0.1
    targets=lora_targets, layer_count=vera_layer, family="added",
))
register(Method(
    name="adalora", label="AdaLoRA", colour="#DA8BC3",
    description="SVD-form LoRA whose rank budget is reallocated across layers during training (12 -> 8 on average)",
    # gpu: 5e-4 (AdaLoRA paper, Zhang et al., 2023, DeBERTaV3-base GLUE: 5e-4..1e-3).
    learning_rates={"gpu": 5e-4, "cpu": 0.016, "cpu-first": 0.016},
    lr_grid={"cpu-first": (5e-4, 1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2, 3.2e-2, 6.4e-2)},
    config_class="AdaLoraConfig", defaults={"init_r": 12, "target_r": 8, "lora_alpha": 16, "lora_dropout": 0.1},
    targets=lora_targets, layer_count=adalora_layer, run_fields=adalora_schedule, callbacks=adalora_callbacks,
    family="added",
))
register(Method(
    name="loha", label="LoHa", colour="#8C8C8C",
    description="the Hadamard product of two low-rank products per adapted matrix (LyCORIS), head trained",
    # gpu: LoRA's 4e-4 (no roberta-base value published that we know of; LyCORIS uses LoRA-like rates).
    learning_rates={"gpu": 4e-4, "cpu": 0.008, "cpu-first": 0.008},
    lr_grid={"cpu-first": (1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2, 3.2e-2)},
    config_class="LoHaConfig", defaults={"r": 8, "alpha": 16},
    targets=lora_targets, layer_count=loha_layer, family="added",
))
register(Method(
    name="bitfit", label="BitFit", colour="#CCB974",
    description="only the bias terms (and the head) trained, every weight matrix frozen; no peft adapter",
    # gpu: 1e-3, the top of the BitFit paper's grid (Ben Zaken et al., 2022: 1e-4..1e-3 on BERT GLUE).
    learning_rates={"gpu": 1e-3, "cpu": 0.002, "cpu-first": 0.001},
    lr_grid={"cpu-first": (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)},
    prepare=bitfit_prepare, part_count=bitfit_parts, family="added",
))
register(Method(
    name="prompt_tuning", label="Prompt tuning", colour="#64B5CD",
    description="20 trained soft-prompt embeddings before every review, the whole model frozen, head trained",
    # gpu: 3e-2, the rate of peft's prompt-tuning examples (Lester et al., 2021 used 0.3 with Adafactor).
    learning_rates={"gpu": 3e-2, "cpu": 0.06, "cpu-first": 0.03}, lr_grid={"cpu-first": (3e-3, 1e-2, 3e-2, 1e-1)},
    config_class="PromptTuningConfig", defaults={"num_virtual_tokens": 20},
    part_count=prompt_parts, unsupported=prompt_unsupported, family="added",
))


# The further methods register after these, in their own module (family "further").
from . import further_methods  # noqa: E402,F401
