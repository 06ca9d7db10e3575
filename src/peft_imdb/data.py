"""IMDb reviews: from the Hugging Face hub or a local folder, as seeded, label-balanced subsets."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from datasets import Dataset, DatasetDict

from .errors import UserError, first_line

HUB_DATASET = "stanfordnlp/imdb"
DATA_ENV = "PEFT_IMDB_DATA"
SUFFIXES = (".jsonl", ".json", ".parquet", ".csv")


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path | None:
    """Return the local data folder from the argument or PEFT_IMDB_DATA, or None for the hub."""
    chosen = data_dir if data_dir is not None else os.environ.get(DATA_ENV) or None
    if chosen is None:
        return None
    path = Path(chosen).expanduser()
    if not path.is_dir():
        raise UserError(
            f"data folder {str(path)!r} does not exist; pass --data-dir or set {DATA_ENV} "
            "to a folder holding train.jsonl and test.jsonl (e.g. ../shared/data/imdb)"
        )
    return path


def _split_file(folder: Path, split: str) -> Path:
    for suffix in SUFFIXES:
        candidate = folder / f"{split}{suffix}"
        if candidate.is_file():
            return candidate
    raise UserError(
        f"no {split} file in {str(folder)!r}: expected one of "
        f"{', '.join(split + s for s in SUFFIXES)}; set {DATA_ENV} or --data-dir to the IMDb folder"
    )


def _read_split(path: Path) -> Dataset:
    """Read one split file with pandas (no cache written) and check its columns and labels."""
    import pandas as pd

    try:
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
        elif path.suffix == ".csv":
            frame = pd.read_csv(path)
        else:
            frame = pd.read_json(path, lines=path.suffix == ".jsonl")
    except ValueError as exc:
        raise UserError(f"{path} is not readable as {path.suffix[1:]}: {first_line(exc)}") from None
    return Dataset.from_pandas(_validated(frame, path), preserve_index=False)


def _validated(frame, path: Path):
    missing = {"text", "label"} - set(frame.columns)
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(sorted(missing))}; each row needs 'text' and 'label'")
    labels = frame["label"]
    bad = labels[~labels.isin([0, 1])]
    if len(bad):
        raise UserError(f"{path}: labels must be 0 (neg) or 1 (pos); row {bad.index[0]} has {bad.iloc[0]!r}")
    text = frame["text"]
    empty = text[text.isna() | (text.astype(str).str.strip() == "")]
    if len(empty):
        raise UserError(f"{path}: row {empty.index[0]} has an empty text")
    return frame[["text", "label"]].astype({"text": str, "label": "int64"})


def load_imdb(data_dir: str | os.PathLike | None = None) -> DatasetDict:
    """Load the IMDb train/test splits from a local folder (data_dir or PEFT_IMDB_DATA) or the hub."""
    folder = resolve_data_dir(data_dir)
    if folder is not None:
        return DatasetDict({s: _read_split(_split_file(folder, s)) for s in ("train", "test")})
    from datasets import load_dataset

    try:
        hub = load_dataset(HUB_DATASET)
    except Exception as exc:  # offline, hub down, auth: all end the same way for the user
        raise UserError(
            f"could not load {HUB_DATASET} from the hub ({type(exc).__name__}); offline, set "
            f"{DATA_ENV} or pass --data-dir to a folder with train.jsonl/test.jsonl"
        ) from None
    return DatasetDict({s: hub[s] for s in ("train", "test")})


def column(dataset: Dataset, name: str) -> np.ndarray:
    """One column of a dataset as a NumPy array, read in one go (iterating a Column decodes row by row)."""
    return dataset.select_columns([name]).with_format("numpy")[:][name]


def balanced_indices(labels: np.ndarray, size: int | None, seed: int, exclude: np.ndarray | None = None,
                     sampler: str = "nested") -> np.ndarray:
    """Pick `size` indices, half per label, at random with `seed`, skipping `exclude`; None = all.

    "nested": per label, the first reviews of one seeded permutation of the pool, so a smaller size's subset lies
    inside a larger one's; "independent" (the earlier draw): a fresh sample for each size.
    """
    pool = np.arange(len(labels))
    if exclude is not None and len(exclude):
        pool = np.setdiff1d(pool, exclude)
    if size is None:
        return pool
    rng = np.random.default_rng(seed)
    per_label = [size // 2, size - size // 2]
    chosen = []
    for label, count in zip((0, 1), per_label):
        candidates = pool[labels[pool] == label]
        if count > len(candidates):
            raise UserError(
                f"asked for {size} reviews ({count} of label {label}) but only {len(candidates)} "
                f"of label {label} are available; use a smaller size"
            )
        if sampler == "nested":  # the permutation does not depend on `count`: each size extends the one below
            chosen.append(rng.permutation(candidates)[:count])
        else:
            chosen.append(rng.choice(candidates, size=count, replace=False))
    picked = np.concatenate(chosen)
    rng.shuffle(picked)
    return picked


# The test reviews of IMDb's test split (25,000) that a committed study scored before the test subset was drawn
# afresh: (eval_size, data_seed, sampler) of each draw. A run with test_reviews="fresh" never scores one of them.
IMDB_TEST_REVIEWS = 25_000
RETIRED_TEST_DRAWS = ((2000, 42, "independent"),)


def retired_test_reviews(test: Dataset) -> np.ndarray:
    """The rows of IMDb's test split an earlier study scored (RETIRED_TEST_DRAWS), with every other row of the same
    text (IMDb repeats some reviews), sorted; none for other data."""
    if len(test) != IMDB_TEST_REVIEWS:
        return np.array([], dtype=int)
    labels = column(test, "label")
    drawn = np.concatenate([balanced_indices(labels, size, seed + 2, sampler=sampler)
                            for size, seed, sampler in RETIRED_TEST_DRAWS])
    texts = test.select_columns(["text"]).to_dict()["text"]
    retired = {texts[i] for i in drawn}
    return np.array([row for row, text in enumerate(texts) if text in retired], dtype=int)


LABEL_NAMES = {0: "negative", 1: "positive"}


def _check_sizes(labels: np.ndarray, sizes: dict[str, int | None], split: str) -> None:
    """UserError naming the split and the flags when the subsets asked for (half of each per label) do not fit in it.

    `sizes` maps each flag to the reviews it asks of this split; None (the whole split) needs at least one left.
    """
    for label in (0, 1):
        available = int(np.sum(labels == label))
        asked = {flag: size - size // 2 if label else size // 2 for flag, size in sizes.items() if size}
        rest = None in sizes.values()  # training on what the others leave needs at least one review
        if sum(asked.values()) + rest <= available:
            continue
        takes = [f"{flag} {sizes[flag]} takes {count}" for flag, count in asked.items()]
        takes += ["training on the rest needs at least one"] if rest else []
        fix = f"use a smaller {' or '.join(asked)}, or a" if asked else "use a"
        raise UserError(f"the {split} has {available} reviews of label {label} ({LABEL_NAMES[label]}), but "
                        f"{' and '.join(takes)}; {fix} data folder with enough reviews of both labels")


def make_splits(
    imdb: DatasetDict,
    train_size: int | None = 3000,
    eval_size: int | None = 2000,
    val_size: int = 500,
    seed: int = 42,
    sampler: str = "nested",
    test_reviews: str = "fresh",
    remaining: bool = False,
) -> DatasetDict:
    """Balanced train / validation / test subsets; validation comes from train reviews outside train, test from
    the test reviews `test_reviews` allows. "fresh": no test review of retired_test_reviews, and no train or
    validation review whose text the test split holds (the same reviews tuning draws from without_test_texts).

    With eval_size 0 (tuning) there is no test subset at all, and `imdb` needs no test split. `remaining`: a
    "remaining" split too, every test review the pool holds (the test subset among them).
    """
    train_labels = column(imdb["train"], "label")
    shared = (rows_sharing_test_text(imdb) if test_reviews == "fresh" and "test" in imdb
              else np.array([], dtype=int))
    learnable = f"train split less the {len(shared)} reviews whose text the test split holds" if len(shared) else \
        "train split"
    _check_sizes(np.delete(train_labels, shared), {"--train-size": train_size, "--val-size": val_size}, learnable)
    # Validation is drawn first so that "full" training (size None) still leaves it out.
    val_idx = (balanced_indices(train_labels, val_size, seed + 1, exclude=shared, sampler=sampler) if val_size
               else np.array([], dtype=int))
    train_idx = balanced_indices(train_labels, train_size, seed, exclude=np.union1d(val_idx, shared), sampler=sampler)
    # review_id: the row of the review in its split, so predictions can be paired across runs.
    splits = DatasetDict(
        train=imdb["train"].select(train_idx).add_column("review_id", train_idx.tolist()),
        validation=imdb["train"].select(val_idx).add_column("review_id", val_idx.tolist()),
    )
    if eval_size != 0:
        test_labels = column(imdb["test"], "label")
        retired = retired_test_reviews(imdb["test"]) if test_reviews == "fresh" else np.array([], dtype=int)
        _check_sizes(np.delete(test_labels, retired), {"--eval-size": eval_size},
                     "fresh test split" if len(retired) else "test split")
        test_idx = balanced_indices(test_labels, eval_size, seed + 2, exclude=retired, sampler=sampler)
        splits["test"] = imdb["test"].select(test_idx).add_column("review_id", test_idx.tolist())
        if remaining:
            pool = np.setdiff1d(np.arange(len(test_labels)), retired)
            splits["remaining"] = imdb["test"].select(pool).add_column("review_id", pool.tolist())
    return splits


_SHARING: dict[tuple[str, str], np.ndarray] = {}  # (train, test) fingerprints -> rows_sharing_test_text


def rows_sharing_test_text(imdb: DatasetDict) -> np.ndarray:
    """The rows of the train split whose text also occurs in the test split (IMDb repeats 123 test texts in train);
    found once per pair of loaded splits (a run draws its subsets more than once)."""
    key = (imdb["train"]._fingerprint, imdb["test"]._fingerprint)
    if key not in _SHARING:
        import pyarrow.compute as pc

        # Arrow compares the texts where they are stored: reading them out as NumPy objects takes seconds.
        texts = {split: imdb[split].with_format("arrow")[:]["text"] for split in ("train", "test")}
        shared = pc.is_in(texts["train"], value_set=texts["test"]).to_numpy(zero_copy_only=False)
        _SHARING.clear()  # one pair at a time: the data a process works on
        _SHARING[key] = np.flatnonzero(shared).astype(int)
    return _SHARING[key].copy()


def without_test_texts(imdb: DatasetDict) -> DatasetDict:
    """The train split less every review whose text also occurs in the test split, and no test split.

    What tuning sees: a tuning set drawn from train alone could still hold reviews of the study's test subset.
    """
    keep = np.setdiff1d(np.arange(len(imdb["train"])), rows_sharing_test_text(imdb))
    return DatasetDict(train=imdb["train"].select(keep))


TRUNCATIONS = ("head", "head_tail")


def head_tail(ids: list, max_length: int) -> list:
    """Keep the first quarter and the last three quarters of max_length (Sun et al. 2019: head+tail)."""
    if len(ids) <= max_length:
        return ids
    head = max_length // 4
    return ids[:head] + ids[len(ids) - (max_length - head):]


def tokenize(splits: DatasetDict, tokenizer, max_length: int, truncation: str = "head") -> DatasetDict:
    """Tokenize to at most max_length tokens (head, or head+tail); add a `length` column; pad per batch."""
    if max_length <= 0:
        raise UserError(f"max length must be positive, got {max_length}")
    if truncation not in TRUNCATIONS:
        raise UserError(f"unknown truncation {truncation!r}; use one of {', '.join(TRUNCATIONS)}")

    def encode(batch):
        if truncation == "head":
            encoded = dict(tokenizer(batch["text"], truncation=True, max_length=max_length))
        else:
            # Special tokens sit at the two ends, so the head keeps [CLS]/<s> and the tail [SEP]/</s>.
            from .models import transformers_errors_only

            with transformers_errors_only():  # "longer than the maximum" is expected: it is cut just below
                full = tokenizer(batch["text"], truncation=False)
            encoded = {name: [head_tail(row, max_length) for row in rows] for name, rows in full.items()}
        encoded["length"] = [len(ids) for ids in encoded["input_ids"]]
        return encoded

    return splits.map(encode, batched=True, remove_columns=["text"], desc="tokenize")


def token_lengths(texts: list[str], tokenizer) -> np.ndarray:
    """Untruncated token count of each text (for length statistics and padding bounds)."""
    return np.array([len(ids) for ids in tokenizer(texts, truncation=False)["input_ids"]])
