"""`gansynth demo`: the whole path fit → evaluate → export → benchmark on digits, ending with the verdict line."""

import json

import pytest
from conftest import run_cli

from gansynth.demo import run_demo
from gansynth.mixing import Mixing


def test_demo_runs_every_stage_and_ends_with_the_verdict(tmp_path, capsys):
    out = tmp_path / "demo"
    # a short GAN and one given mixing at the fixed budget: this checks the path, not quality or the choices
    result = run_demo(out, progress=False, kimg=1.0, seeds=1, budget="fixed", mixings=[Mixing()])
    stdout = capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [
        ".gansynth-demo.json",
        "benchmark",
        "data",
        "evaluate.json",
        "run",
        "synthetic",
    ]  # the marker: only a folder the demo made is ever emptied by a later demo
    assert sorted(p.name for p in (out / "data").iterdir()) == ["test", "train"]
    # evaluate: a record with its protocol, also appended to the run's metrics.jsonl
    record = json.loads((out / "evaluate.json").read_text())
    assert record["protocol"]["feature_extractor"] == "domain" and record["fid"] is not None
    assert len((result.run_dir / "metrics.jsonl").read_text().splitlines()) == 1
    # export: exactly as many images per class as the largest real class, with metadata and manifest
    counts = json.loads((result.run_dir / "dataset.json").read_text())["counts"]
    manifest = json.loads((out / "synthetic" / "manifest.json").read_text())
    assert set(result.export.counts.values()) == {max(counts.values())}
    assert {c["name"]: c["count"] for c in manifest["classes"]} == result.export.counts
    assert manifest["metrics"]["fid"] == record["fid"]  # the manifest snapshots the run's latest metrics
    assert len((out / "synthetic" / "images.csv").read_text().splitlines()) == 1 + sum(result.export.counts.values())
    # benchmark: all four arms on the held-out split, report files, and the verdict as the last line on stdout
    report = json.loads((out / "benchmark" / "report.json").read_text())
    assert set(report["arms"]) == {"real", "real+synthetic", "synthetic", "rebalanced", "balanced-softmax"}
    assert report["protocol"]["split"]["kind"] == "given"
    assert {"report.json", "report.md", "arms.png"} <= {p.name for p in (out / "benchmark").iterdir()}
    assert result.verdict.startswith(f"real+synthetic vs {report['best_non_generative']}:")
    assert stdout.strip().splitlines()[-1] == result.verdict


def test_demo_refuses_a_file_or_a_foreign_folder(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    code, _, err = run_cli(["demo", "--out", tmp_path / "file", "--quiet"], capsys)
    assert code == 2 and "error:" in err and "is a file" in err and "Traceback" not in err
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("keep me")
    code, _, err = run_cli(["demo", "--out", foreign, "--quiet"], capsys)
    assert code == 2 and "thesis.tex" in err and (foreign / "thesis.tex").read_text() == "keep me"
    assert sorted(p.name for p in foreign.iterdir()) == ["thesis.tex"]


@pytest.mark.slow
def test_default_demo_learns_and_ends_with_a_verdict(tmp_path, capsys):
    """README command 1 with its defaults (~3-4 minutes on 2 CPU cores)."""
    code, stdout, err = run_cli(["demo", "--out", tmp_path / "demo", "--quiet"], capsys)
    assert code == 0, err
    record = json.loads((tmp_path / "demo" / "evaluate.json").read_text())
    assert record["label_fidelity"] > 0.9  # the generator learned every class
    report = json.loads((tmp_path / "demo" / "benchmark" / "report.json").read_text())
    assert report["arms"]["synthetic"]["balanced_accuracy"]["mean"] > 0.6  # synthetic-only training recognises digits
    assert stdout.strip().splitlines()[-1] == report["verdict"]
