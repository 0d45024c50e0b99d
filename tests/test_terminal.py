"""What a person reads: evaluate, benchmark and demo output fitted to the console, at 80 columns and wider.

The records are real: ``tests/fixtures/*_digits.json`` are the ``evaluate.json`` and ``report.json`` of a default
``gansynth demo`` (paths rewritten to the default ``gansynth-demo`` folder). ``demo_80.txt`` and ``demo_120.txt`` are
what the demo prints on stdout for them; regenerate with ``GANSYNTH_UPDATE_FIXTURES=1 pytest tests/test_terminal.py``
and review the diff.
"""

import copy
import json
import os
from pathlib import Path

import pytest
from rich.console import Console

from gansynth.metrics.score import find_alarms
from gansynth.terminal import alarm_lines, class_list, print_metrics, print_summary

FIXTURES = Path(__file__).parent / "fixtures"
ELLIPSIS = "…"


@pytest.fixture
def metrics() -> dict:
    return json.loads((FIXTURES / "evaluate_digits.json").read_text())


@pytest.fixture
def report() -> dict:
    return json.loads((FIXTURES / "benchmark_digits.json").read_text())


def collapsed(record: dict, names: list[str] | None = None) -> dict:
    """``record`` with every class collapsed (recall 0.05), optionally renamed, and its alarms recomputed."""
    record = copy.deepcopy(record)
    rows = list(record["per_class"].values())
    names = names or list(record["per_class"])
    record["per_class"] = {name: {**row, "recall": 0.05, "collapse": True} for name, row in zip(names, rows)}
    record["alarms"] = find_alarms(record, heldout_accuracy=0.99)
    return record


def render(width: int, draw) -> str:
    console = Console(width=width, record=True, highlight=False, file=open(os.devnull, "w"))
    draw(console)
    return console.export_text()


def demo_stdout(metrics: dict, report: dict, width: int) -> str:
    """What ``gansynth demo`` writes on stdout: the evaluate tables, then the benchmark summary and verdict."""
    return render(width, lambda c: (print_metrics(metrics, c), print_summary(report, c, "gansynth-demo/benchmark")))


def tables(text: str) -> list[str]:
    """The lines of the tables (box drawing), where a cut cell would show."""
    return [line for line in text.splitlines() if line[:1] in "┏┃┡│└"]


def _shown_numbers(metrics: dict, report: dict) -> list[str]:
    """How the FID, the first class's precision / coverage / label fidelity, the real arm and the verdict's CI
    read once rounded for a person."""
    first = next(iter(metrics["per_class"].values()))
    real = report["arms"]["real"]["balanced_accuracy"]
    verdict = report["comparisons"][0]
    low, high = (100 * v for v in verdict["ci95"])
    shares = [f"{first[k]:.2f}" for k in ("precision", "coverage", "label_fidelity")]
    return [f"{metrics['fid']:.3g}", *shares, f"{100 * real['mean']:.1f} ± {100 * real['std']:.1f}",
            f"[{low:+.1f}, {high:+.1f}]", verdict["verdict"]]  # fmt: skip


@pytest.mark.parametrize("width", [80, 120])
def test_no_table_cell_is_cut_and_no_table_passes_the_edge(metrics, report, width):
    words = ["golden retriever", "tabby cat", "red fox", "Egyptian cat", "bull mastiff"] * 2
    for record in (metrics, collapsed(metrics), collapsed(metrics, [f"{w} {k}" for k, w in enumerate(words)])):
        text = demo_stdout(record, report, width)
        assert ELLIPSIS not in text
        assert all(len(line) <= width for line in tables(text)), "a table wider than the console"
        for number in _shown_numbers(metrics, report):
            assert number in text, number  # rounded: FID 3 significant digits, shares 2 decimals


def test_80_columns_show_the_columns_that_matter_and_wider_shows_more(metrics):
    narrow = render(80, lambda c: print_metrics(metrics, c))
    wide = render(120, lambda c: print_metrics(metrics, c))
    header = next(line for line in tables(narrow) if "precision" in line and "class" in line)
    for column in ("class", "FID", "precision", "recall", "coverage", "label fidelity", "alarm"):
        assert column in header
    assert "density" not in header and "generated" not in header
    wide_header = next(line for line in tables(wide) if "precision" in line and "class" in line)
    assert "density" in wide_header and "generated" in wide_header


def test_collapse_alarms_are_one_summary_line_and_the_classes(metrics):
    record = collapsed(metrics)
    text = render(80, lambda c: [c.print(line) for line in alarm_lines(record, c.width)])
    lines = text.strip().splitlines()
    assert len(lines) <= 3
    assert lines[0].startswith("collapse alarm in 10 of 10 classes (recall or coverage < 0.1")
    assert lines[-1].strip() == "classes: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9"
    full = render(80, lambda c: print_metrics(record, c))
    assert full.count("alarm in") == 1 and "class '3'" not in full  # not one paragraph per class


def test_a_long_class_list_says_how_many_more():
    names = [f"class-{k}" for k in range(100)]
    line = class_list("  classes: ", names, 80)
    assert len(line) <= 80 and line.endswith("more)") and "class-0, class-1" in line
    shown = line.count("class-")
    assert line.endswith(f"(+{100 - shown} more)")


@pytest.mark.parametrize("width", [80, 120])
def test_demo_transcript_matches_its_reviewed_fixture(metrics, report, width):
    text = demo_stdout(metrics, report, width)
    fixture = FIXTURES / f"demo_{width}.txt"
    if os.environ.get("GANSYNTH_UPDATE_FIXTURES"):
        fixture.write_text(text)
    assert text == fixture.read_text(), f"{fixture.name} is out of date (see this module's docstring)"
    assert text.strip().splitlines()[-1] == report["verdict"]


def test_readme_quickstart_shows_the_80_column_transcript():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    fixture = "\n".join(line.rstrip() for line in (FIXTURES / "demo_80.txt").read_text().splitlines())
    assert "<!-- demo-transcript: tests/fixtures/demo_80.txt" in readme
    assert f"```text\n{fixture}\n```" in readme, "README's demo transcript differs from tests/fixtures/demo_80.txt"


def test_the_demo_stage_headings_fit_80_columns():
    from gansynth.demo import STAGES

    text = render(80, lambda c: [c.rule(title) for title in STAGES])
    assert ELLIPSIS not in text and all(title in text for title in STAGES)
