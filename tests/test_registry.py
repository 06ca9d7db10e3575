"""A method is one registry entry: a toy method registered here trains, is stored and is reported, nothing else touched."""

from __future__ import annotations

import pytest

from peft_imdb.cli import main
from peft_imdb.errors import UserError
from peft_imdb.methods import METHODS, Method, get_method, lora_layer, method_names, register
from peft_imdb.results import read_results
from peft_imdb.resolved import resolve


@pytest.fixture
def toy_method():
    """LoRA of rank 4 on keys and values, registered for the test and removed after it."""
    entry = register(Method(
        name="toy", label="LoRA k/v", colour="#8172B3", description="rank-4 updates of keys and values",
        learning_rates={"cpu": 2e-3, "gpu": 4e-4}, config_class="LoraConfig", defaults={"r": 4, "lora_alpha": 8},
        targets=lambda model_type: {"target_modules": ["key", "value"]}, layer_count=lora_layer, family="added",
    ))
    yield entry
    METHODS.pop("toy")


def test_a_registered_method_trains_is_stored_and_reported(toy_method, tiny_models, data_dir, tmp_path, capsys):
    common = ["--model", str(tiny_models["bert"]), "--profile", "smoke", "--train-size", "16", "--eval-size", "16",
              "--val-size", "0", "--max-length", "32", "--data-dir", str(data_dir), "--results-dir", str(tmp_path)]
    assert main(["run", "--method", "toy", *common]) == 0
    assert main(["run", "--method", "lora", *common]) == 0
    (toy,) = [r for r in read_results(tmp_path) if r.method == "toy"]
    assert toy.status == "ok" and sorted(toy.target_modules) == ["key", "value"]
    assert toy.identity["adapter"]["r"] == 4 and toy.lr == 2e-3
    assert main(["report", "--results-dir", str(tmp_path), "--figures-dir", str(tmp_path / "figures")]) == 0
    summary = (tmp_path / "summary.md").read_text()
    assert f"| {toy.model} | toy | 1 |" in summary and toy.model.startswith("bert-")  # the folder's short name
    assert (tmp_path / "figures" / "pareto_params.png").stat().st_size > 5000
    assert "toy" in method_names() and "toy" not in method_names(core_only=True)


def test_an_unknown_method_is_a_clear_error_everywhere(capsys, tmp_path):
    with pytest.raises(UserError, match="valid methods: full, lora, qlora, ia3"):
        get_method("dora-typo")
    assert main(["run", "--method", "dora-typo", "--results-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown method 'dora-typo'" in err[0]


@pytest.mark.parametrize("flags, message", [
    (["--adapter", "rank=16"], "LoraConfig has no setting 'rank'"),
    (["--adapter", "r=abc"], "LoraConfig.r expects int"),
    (["--method", "full", "--adapter", "r=4"], "full has no adapter settings"),
])
def test_bad_adapter_flags_are_one_line_errors_with_exit_code_2(flags, message, capsys, tmp_path):
    method = [] if "--method" in flags else ["--method", "lora"]
    assert main(["run", *method, *flags, "--results-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "runs").exists()


@pytest.mark.unit
def test_the_adapter_flag_and_its_shortcuts_make_the_same_run(tmp_path):
    from peft_imdb.cli import _configs, build_parser

    def key(*flags):
        args = build_parser().parse_args(["run", "--method", "lora", "--profile", "smoke", *flags])
        return resolve(_configs(args, [], ["lora"], [0])[0]).key

    assert key("--lora-r", "16") == key("--adapter", "r=16") != key()
    assert key("--target-modules", "query", "key") == key("--adapter", "target_modules=query,key")
