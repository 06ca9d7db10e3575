"""Version shims (compat.py) and the NF4 probe, on whichever stack is installed (pinned or oldest)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from peft_imdb import compat
from peft_imdb.hardware import nf4_support


class _Args4x:  # the TrainingArguments keywords of transformers 4.x
    def __init__(self, output_dir=None, warmup_ratio=0.0, warmup_steps=0, group_by_length=False):
        pass


class _Args5x:  # ... and of transformers 5.x
    def __init__(self, output_dir=None, warmup_steps=0, train_sampling_strategy="random"):
        pass


def test_warmup_kwargs_follow_the_signature():
    assert compat.warmup_kwargs(0.1, _Args4x) == {"warmup_ratio": 0.1}
    assert compat.warmup_kwargs(0.1, _Args5x) == {"warmup_steps": 0.1}


def test_length_grouping_kwargs_follow_the_signature():
    assert compat.length_grouping_kwargs(True, _Args4x) == {"group_by_length": True}
    assert compat.length_grouping_kwargs(False, _Args4x) == {"group_by_length": False}
    assert compat.length_grouping_kwargs(True, _Args5x) == {"train_sampling_strategy": "group_by_length"}
    assert compat.length_grouping_kwargs(False, _Args5x) == {"train_sampling_strategy": "random"}


def test_installed_training_arguments_accept_the_shims(tmp_path):
    from transformers import TrainingArguments

    for on in (True, False):
        args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[],
                                 **compat.warmup_kwargs(0.1), **compat.length_grouping_kwargs(on))
        assert args.get_warmup_steps(100) == 10
        grouped = getattr(args, "group_by_length", None) is True or \
            getattr(args, "train_sampling_strategy", None) == "group_by_length"
        assert grouped == on


@pytest.mark.parametrize("device, transformers, bnb, needs", [
    ("cpu", "4.52.4", "0.50.2", "transformers >= 4.53"),
    ("cpu", "4.46.0", "0.46.1", "transformers >= 4.53"),
    ("cpu", "5.17.0", "0.45.0", "bitsandbytes >= 0.46.1"),
    ("cuda", "5.0.0rc1", "0.45.5", "bitsandbytes >= 0.46.1"),
    ("cpu", "4.53.0", "0.46.1", None),
    ("cpu", "5.24.0", "0.50.2", None),
    ("cuda", "4.46.0", "0.45.0", None),  # 4-bit on CUDA predates 4.53; 4.x takes any bitsandbytes
])
def test_nf4_version_problem_names_what_to_upgrade(device, transformers, bnb, needs):
    problem = compat.nf4_version_problem(device, transformers=transformers, bitsandbytes=bnb)
    if needs is None:
        assert problem is None
    else:
        assert needs in problem and transformers in problem


def test_nf4_support_is_false_with_the_reason_when_transformers_is_too_old(monkeypatch):
    real = compat.version
    monkeypatch.setattr(compat, "version", lambda name: "4.46.0" if name == "transformers" else real(name))
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    nf4_support.cache_clear()
    try:
        ok, reason = nf4_support()
    finally:
        nf4_support.cache_clear()
    assert not ok and "transformers 4.46.0" in reason and ">= 4.53" in reason


@pytest.mark.integration
def test_drop_peft_config_after_a_real_merge(tmp_path):
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoModelForSequenceClassification

    from peft_imdb.tiny import build_tiny_model

    folder = build_tiny_model("bert", tmp_path / "bert")
    model = AutoModelForSequenceClassification.from_pretrained(folder)
    peft_model = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, r=4, target_modules=["query", "value"]))
    merged = compat.drop_peft_config(peft_model.merge_and_unload())
    assert not hasattr(merged, "peft_config")
    assert compat.drop_peft_config(merged) is merged  # nothing to drop: unchanged


@pytest.mark.integration
@pytest.mark.parametrize("family", ["distilbert", "bert", "roberta", "deberta-v2"])
def test_tiny_tokenizers_emit_no_token_type_ids(tmp_path, family):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from peft_imdb.tiny import build_tiny_model

    folder = build_tiny_model(family, tmp_path / family)
    batch = AutoTokenizer.from_pretrained(folder)(["a wonderful film", "a terrible movie"], padding=True,
                                                  return_tensors="pt")
    assert set(batch) == {"input_ids", "attention_mask"}
    with torch.no_grad():
        assert AutoModelForSequenceClassification.from_pretrained(folder)(**batch).logits.shape == (2, 2)


@pytest.mark.integration
def test_importing_the_package_and_probing_nf4_prints_nothing():
    """bitsandbytes < 0.48 logs a warning at import on CPU; it must not reach stderr (one-line errors)."""
    code = ("import peft_imdb, bitsandbytes, peft, transformers\n"
            "from peft_imdb.hardware import nf4_support\n"
            "nf4_support()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr


# --- offline runs: the hub kernel lookup's notices stay off stderr ---------------------------------------

TRUST_CHECK = ("Skipping publisher trust check for 'kernels-community/quantization-bitsandbytes' because Hugging "
               "Face Hub is in offline mode.")


def test_the_offline_trust_check_notice_is_dropped_at_its_logger_and_nothing_else(caplog):
    import logging

    compat.silence_offline_hub_chatter()
    compat.silence_offline_hub_chatter()  # once is enough: a second call adds no second filter
    logger = logging.getLogger("kernels._internals.hf_hub")
    assert len(logger.filters) == 1
    with caplog.at_level(logging.WARNING):
        logger.warning(TRUST_CHECK)
        logger.warning("Kernel repository 'x/y' could not verify publisher trust status.")
        logging.getLogger("kernels._internals.other").warning(TRUST_CHECK)  # another logger: not ours to drop
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("kernels._internals.hf_hub", "Kernel repository 'x/y' could not verify publisher trust status."),
        ("kernels._internals.other", TRUST_CHECK)]


# Stands in for the `kernels` package where it is not installed. bitsandbytes asks it for its CPU NF4 kernel at
# import (on CPUs with avx512_bf16); offline, kernels 0.19 logs the trust-check notice (kernels/_internals/hf_hub.py)
# and then finds no kernel in its cache.
KERNELS_STUB = f'''
import logging
import os


def get_kernel(repo_id, version=None, **kwargs):
    if os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE"):
        logging.getLogger("kernels._internals.hf_hub").warning(
            f"Skipping publisher trust check for '{{repo_id}}' because Hugging Face Hub is in offline mode.")
    raise FileNotFoundError(f"no kernel {{repo_id}} in the local cache")
'''


@pytest.mark.system
def test_an_offline_qlora_run_prints_only_progress_bars_on_stderr(tmp_path, data_dir):
    import os
    import re
    from pathlib import Path

    (tmp_path / "stub" / "kernels").mkdir(parents=True)
    (tmp_path / "stub" / "kernels" / "__init__.py").write_text(KERNELS_STUB)
    src = Path(__file__).resolve().parents[1] / "src"
    env = {**os.environ, "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(src), str(tmp_path / "stub"), os.environ.get("PYTHONPATH", "")])}
    env.pop("TQDM_DISABLE", None)
    done = subprocess.run([sys.executable, "-m", "peft_imdb", "run", "--method", "qlora", "--profile", "smoke",
                           "--data-dir", str(data_dir), "--results-dir", str(tmp_path / "out")],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert ": ok " in done.stdout
    # What stderr holds, cut at carriage returns and line ends, cursor moves removed: tqdm bars only.
    pieces = [re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", piece).strip() for piece in re.split(r"[\r\n]", done.stderr)]
    bar = re.compile(r"^(?:[\w ]+: )?\s*\d+%\|.*\| *\d+/\d+ \[")
    assert [piece for piece in pieces if piece and not bar.match(piece)] == []
    assert any(bar.match(piece) for piece in pieces)  # the bars are there: stderr was not silenced wholesale
