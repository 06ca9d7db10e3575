"""The headline table and findings sentences: read from the statistics table, on a synthetic and the committed store;
and the README/docs builder (every block rebuilt, --check naming the stale file and block)."""

import importlib.util
import re
from pathlib import Path

import pytest

import test_report
from test_report import ACCURACY_TWIN_LR, fake_run

ROOT = Path(__file__).resolve().parents[1]
REVIEWS = 8000  # enough reviews that a 0-point difference is *equivalent* at the 1-point margin


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Full FT; LoRA 1 point below; QLoRA at Full FT's accuracy; IA3 8 points below; a LoRA arm at Full FT's."""
    root = tmp_path_factory.mktemp("findings") / "results"
    accuracy = dict(test_report.ACCURACY)
    test_report.ACCURACY["qlora"] = accuracy["full"]
    try:
        for seed in range(3):
            for method in ("full", "lora", "qlora", "ia3"):
                fake_run(root, method, seed, reviews=REVIEWS)
            fake_run(root, "lora", seed, reviews=REVIEWS, lr=ACCURACY_TWIN_LR)
    finally:
        test_report.ACCURACY.update(accuracy)
    return root


@pytest.fixture(scope="module")
def table(store):
    """The statistics table of the synthetic study, computed once (the bootstrap takes seconds)."""
    from peft_imdb.findings import study_statistics

    return study_statistics(store)


@pytest.fixture(scope="module")
def stats(table):
    return table.set_index("label")


@pytest.mark.integration
def test_headline_has_one_row_per_method_with_the_reports_numbers(store, stats):
    from peft_imdb.findings import headline_table

    headline = headline_table(store)  # from the folder, as the README builder's callers pass it
    assert list(headline["method"]) == ["Full FT", "LoRA", "QLoRA", "IA3"]  # registry order; the arm is left out
    assert list(headline.columns) == ["method", "seeds", "accuracy", "vs_full", "vs_full_90", "verdict",
                                      "trainable_percent", "train_time_s", "model_state_mb"]
    rows = headline.set_index("method")
    for method, label in (("Full FT", "full"), ("LoRA", "lora"), ("QLoRA", "qlora"), ("IA3", "ia3")):
        row = stats.loc[label]
        assert rows.loc[method, "seeds"] == row["n"] == 3
        assert rows.loc[method, "accuracy"] == (f"{100 * row['accuracy_mean']:.1f} [{100 * row['acc_low']:.1f}, "
                                                f"{100 * row['acc_high']:.1f}]")
        assert rows.loc[method, "verdict"] == (row["verdict"] or "–")
        assert rows.loc[method, "model_state_mb"] == f"{row['model_state_mb_mean']:.0f}"
    assert rows.loc["Full FT", "vs_full"] == "–" and rows.loc["Full FT", "trainable_percent"] == "100"
    lora = stats.loc["lora"]
    assert rows.loc["LoRA", "vs_full"] == (f"{100 * lora['diff']:+.1f} [{100 * lora['diff_low']:+.1f}, "
                                           f"{100 * lora['diff_high']:+.1f}]")
    assert rows.loc["QLoRA", "verdict"] == "equivalent" and rows.loc["IA3", "verdict"] == "worse"


@pytest.mark.integration
def test_markdown_names_the_references_precision_and_the_rule(table, stats):
    from peft_imdb.findings import headline_markdown

    text = headline_markdown(table=table)
    precision = stats.loc["full", "precision_mode"]
    assert f"vs Full FT ({precision}), points (95% CI)" in text
    assert f"Full FT, the reference, trained in {precision}" in text
    assert "within ±1 point" in text and "Holm p < 0.05" in text and "`results/runs/`" in text
    assert len([line for line in text.splitlines() if line.startswith("| ")]) == 1 + 4  # header and four methods


@pytest.mark.integration
def test_findings_state_the_verdicts_with_their_intervals(table, stats):
    from peft_imdb.findings import findings

    sentences = findings(table=table)
    assert 3 <= len(sentences) <= 6 and all(re.search(r"\d", s) for s in sentences)
    equivalent, cheapest = sentences[0], sentences[1]
    qlora = stats.loc["qlora"]
    assert "QLoRA (" in equivalent and "is equivalent to it within ±1 point" in equivalent
    assert f"90% CI [{100 * qlora['diff90_low']:+.1f}, {100 * qlora['diff90_high']:+.1f}]" in equivalent
    full = stats.loc["full"]
    assert f"Full FT ({100 * full['accuracy_mean']:.1f}% accuracy, 95% CI [{100 * full['acc_low']:.1f}" in equivalent
    assert cheapest.startswith("The cheapest equivalent method is QLoRA:")
    assert f"against Full FT's {full['model_state_mb_mean']:.0f} MB" in cheapest
    worse = next(s for s in sentences if s.startswith("Worse than Full FT"))
    assert "IA3 (" in worse and "QLoRA" not in worse
    arm = sentences[-1]
    assert f"LoRA (lr={ACCURACY_TWIN_LR:g}), *equivalent*" in arm


@pytest.mark.integration
def test_no_method_equivalent_is_said_so(tmp_path):
    from peft_imdb.findings import findings

    root = tmp_path / "results"
    for seed in range(3):
        for method in ("full", "qlora", "ia3"):
            fake_run(root, method, seed)
    sentences = findings(root)
    assert "no method at its default settings is shown equivalent within ±1 point" in sentences[0]
    assert not any(s.startswith("The cheapest") for s in sentences)


@pytest.mark.integration
def test_method_finding_is_one_sentence_per_method(store, table, stats):
    from peft_imdb.findings import method_finding

    full = method_finding("full", table=table)
    assert full.startswith(f"Full FT: {100 * stats.loc['full', 'accuracy_mean']:.1f}% accuracy (95% CI [")
    assert "the reference every other method is compared with" in full
    lora, row = method_finding("lora", table=table), stats.loc["lora"]
    assert f"{100 * row['diff']:+.1f} points, 95% CI [{100 * row['diff_low']:+.1f}, {100 * row['diff_high']:+.1f}]" in lora
    assert lora.endswith(f"*{row['verdict']}* at a margin of ±1 point.") and lora.count(". ") == 0
    assert method_finding("dora", store, table=table) == f"No finished study run of DoRA in `{store}` yet."


@pytest.mark.integration
def test_an_empty_store_says_so(tmp_path):
    from peft_imdb.findings import findings, headline_markdown, headline_table

    assert headline_table(tmp_path).empty
    assert headline_markdown(tmp_path).startswith("*No finished study runs")
    assert findings(tmp_path) == ["No finished study runs with a Full FT reference yet."]


# --- the committed study --------------------------------------------------------------------------------------


def _summary_rows() -> dict[str, list[str]]:
    """The rows of results/summary.md's main table, by label (cells as written)."""
    lines = (ROOT / "results" / "summary.md").read_text().split("## Accuracy and verdicts against Full FT")[1]
    rows = [line.split(" | ") for line in lines.split("\n## ")[0].splitlines() if line.startswith("| minilm |")]
    return {cells[1]: [c.strip(" |") for c in cells] for cells in rows}


@pytest.mark.audit
def test_committed_sentences_carry_the_summarys_numbers():
    from peft_imdb.findings import findings, headline_table, method_finding, study_statistics
    from peft_imdb.methods import METHODS

    table = study_statistics(ROOT / "results")
    summary = _summary_rows()
    headline = headline_table(table=table).set_index("method")
    sentences = " ".join(findings(table=table))
    methods = [m for m in summary if m in set(table["method"])]
    assert methods and "full" in methods
    for method in methods:
        cells = summary[method]  # model, label, seeds, lr, precision, accuracy, CI, sd, vs Full FT, 90% CI, p, verdict
        sentence = method_finding(method, table=table)
        accuracy = float(re.search(r": ([\d.]+)% accuracy", sentence).group(1))
        assert accuracy == pytest.approx(100 * float(cells[5].split(" ± ")[0]), abs=0.05 + 1e-9)
        assert f"{cells[2]} seeds, {cells[4]}" in sentence
        label = METHODS[method].label
        assert headline.loc[label, "seeds"] == int(cells[2])
        if method == "full":
            continue
        versus, _, reference = cells[8].partition(" vs ")  # " vs fp32": compared with Full FT of another precision
        difference, interval = versus.split(" ", 1)
        assert (f"against Full FT in {reference}" in sentence) == bool(reference)
        assert f"{difference} points, 95% CI {interval}, 90% CI {cells[9]}" in sentence
        assert f"*{cells[11]}*" in sentence
        assert headline.loc[label, "vs_full"] == versus and headline.loc[label, "verdict"] == cells[11]
        assert f"{label} ({difference} points, 95% CI {interval}" in sentences


# --- the README and docs builder ------------------------------------------------------------------------------


def _builder():
    spec = importlib.util.spec_from_file_location("update_readme", ROOT / "scripts" / "update_readme.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.integration
def test_check_names_the_stale_file_and_block(tmp_path, monkeypatch, capsys):
    builder = _builder()
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("# r\n<!-- begin:alpha -->\nold\n<!-- end:alpha -->\n")
    (tmp_path / "docs" / "extra.md").write_text("text\n<!-- begin:beta -->\n1\n<!-- end:beta -->\nmore\n")
    monkeypatch.setattr(builder, "ROOT", tmp_path)
    monkeypatch.setattr(builder, "BLOCKS", {"alpha": lambda: "new", "beta": lambda: "2"})
    assert builder.main(["--check"]) == 1
    errors = capsys.readouterr().err
    assert "README.md: block 'alpha' is out of date" in errors and "docs/extra.md: block 'beta' is out of date" in errors
    assert builder.main([]) == 0
    assert (tmp_path / "docs" / "extra.md").read_text() == "text\n<!-- begin:beta -->\n2\n<!-- end:beta -->\nmore\n"
    assert builder.main(["--check"]) == 0
    monkeypatch.setitem(builder.BLOCKS, "gamma", lambda: "3")  # a block in no file is a failure too
    assert builder.main(["--check"]) == 1 and "block 'gamma' is in none of" in capsys.readouterr().err


README_WORDS = re.compile(r"\bissue \d+|\bissues? #\d+|\bsessions?\b|\bgraders?\b|\bsince commit\b|\bcommit [0-9a-f]{7,40}\b"
                          r"|\b[0-9a-f]{7,8}\b(?=[,.)\s])", re.I)


@pytest.mark.audit
def test_readme_and_docs_speak_of_the_project_only():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    assert {p.name for p in pages} >= {"README.md", "protocol.md", "results.md", "performance.md", "cli.md",
                                       "troubleshooting.md"}
    found = [f"{p.relative_to(ROOT)}: {m.group(0)!r}" for p in pages for m in README_WORDS.finditer(p.read_text())
             if not m.group(0).isdigit()]
    assert not found, found
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 300
    assert readme.index("<!-- begin:headline -->") < readme.index("<!-- begin:findings -->") < readme.index("## Quick start")
