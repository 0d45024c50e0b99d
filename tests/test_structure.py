"""The package's shape: one owner per run-directory file name, layers that import downwards, short functions, and
typed specs that check every option once."""

import ast
import re
from pathlib import Path

import pytest

import gansynth
from gansynth import rundir
from gansynth.errors import BenchmarkError, ConfigError

PACKAGE = Path(gansynth.__file__).parent
MAX_FUNCTION_LINES = 80


def _sources() -> dict[Path, str]:
    return {path: path.read_text() for path in sorted(PACKAGE.rglob("*.py"))}


def _imported_modules(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_every_run_directory_file_name_is_spelled_in_rundir_only():
    names = [  # the file names (config.json, log.jsonl, ...): words like "generator" are fine elsewhere
        value
        for key, value in vars(rundir).items()
        if key.isupper() and isinstance(value, str) and re.fullmatch(r"[a-z_]+(\.[a-z]+)+", value)
    ]
    assert {"config.json", "dataset.json", "metrics.jsonl", "log.jsonl", "train_state.json"} <= set(names)
    for path, text in _sources().items():
        if path.name == "rundir.py":
            continue
        for name in names:
            assert f'"{name}"' not in text, f"{path.relative_to(PACKAGE)} spells {name!r}; use gansynth.rundir"


def test_training_imports_neither_the_sampler_nor_the_exporter():
    for path, text in _sources().items():
        if path.parent.name != "train":
            continue
        imported = _imported_modules(ast.parse(text))
        bad = {m for m in imported if m == "gansynth.sampler" or m.startswith("gansynth.exporter")}
        assert not bad, f"train/{path.name} imports {sorted(bad)}"


def test_no_function_is_longer_than_80_lines():
    long = []
    for path, text in _sources().items():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.name} ({lines} lines)")
    assert not long, long


def test_importing_nn_registers_every_architecture():
    from gansynth.nn import ARCHITECTURES

    assert {"biggan", "dcgan", "mlp"} <= set(ARCHITECTURES)


# --- specs ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options, fragment",
    [
        ({"per_class": 0}, "--per-class"),
        ({"per_class": 5, "balance_to": "max"}, "exactly one"),
        ({}, "exactly one"),
        ({"per_class": 5, "format": "gif"}, "unknown image format"),
        ({"per_class": 5, "min_confidence": 1.5}, "--min-confidence"),
        ({"per_class": 5, "shard": "3/2"}, "--shard"),
        ({"per_class": 5, "truncation": 0.0}, "truncation"),
        ({"per_class": 5, "size": 2}, "size"),
        ({"balance_to": "most"}, "--balance-to"),
        ({"per_class": 5, "checkpoint": "oldest"}, "checkpoint"),
    ],
)
def test_export_spec_refuses_bad_options(options, fragment):
    with pytest.raises(ConfigError, match=fragment):
        gansynth.ExportSpec(**options)


def test_export_spec_normalizes_what_the_cli_passes_as_text():
    spec = gansynth.ExportSpec(balance_to="120", classes="a, b", shard="1/4", format="JPEG")
    assert (spec.balance_to, spec.classes, spec.shard, spec.format) == (120, ("a", "b"), (1, 4), "jpg")
    assert spec.replace(seed=3).seed == 3
    with pytest.raises(ConfigError, match="--seed"):
        spec.replace(seed=-1)


def test_export_refuses_a_spec_and_options_together(tiny_run, tmp_path):
    with pytest.raises(ConfigError, match="both spec= and options"):
        gansynth.export(tiny_run, tmp_path / "x", spec=gansynth.ExportSpec(per_class=1), seed=2)
    with pytest.raises(ConfigError, match="must be of type ExportSpec"):
        gansynth.export(tiny_run, tmp_path / "x", spec={"per_class": 1})
    assert not (tmp_path / "x").exists()


def test_benchmark_spec_checks_alone_and_against_the_inputs():
    with pytest.raises(ConfigError, match="unknown arm"):
        gansynth.BenchmarkSpec(arms="real,fake")
    with pytest.raises(ConfigError, match="ratio sweep"):
        gansynth.BenchmarkSpec(ratio_sweep="0.5,-1")
    with pytest.raises(ConfigError, match="budget"):
        gansynth.BenchmarkSpec(budget="forever")
    with pytest.raises(BenchmarkError, match="both given"):
        gansynth.BenchmarkSpec(synthetic_per_class=5, balance_to="max")
    spec = gansynth.BenchmarkSpec(arms="rebalanced,real", ratio_sweep="2,0.5,2")
    assert spec.ratio_sweep == (0.5, 2.0)
    with pytest.raises(BenchmarkError, match="need synthetic images"):
        spec.arms_for(has_synthetic=False)
    assert gansynth.BenchmarkSpec(arms="rebalanced,real").arms_for(has_synthetic=False) == ["real", "rebalanced"]
    with pytest.raises(BenchmarkError, match="both given"):
        gansynth.BenchmarkSpec().arms_for(has_synthetic=True, both_sources=True)


def test_evaluate_spec_refuses_bad_options():
    with pytest.raises(ConfigError):
        gansynth.EvaluateSpec(feature_extractor="incepshun")
    with pytest.raises(ConfigError, match="--num-samples"):
        gansynth.EvaluateSpec(num_samples=0)
    with pytest.raises(ConfigError, match="checkpoint"):
        gansynth.EvaluateSpec(checkpoint="oldest")


def test_a_misspelled_api_option_is_a_user_error_with_a_suggestion():
    with pytest.raises(ConfigError, match="unknown option 'sed'") as info:
        gansynth.export("nowhere", per_class=1, sed=3)
    assert "seed" in info.value.hint
