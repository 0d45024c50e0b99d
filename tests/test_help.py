"""Every verb's ``--help`` at 80 columns: plain metavars, no reStructuredText markup, and an Examples section whose
commands parse. The verbs are found by walking the click command tree, so a new verb or sub-app is checked too."""

import re
import shlex

import pytest

from gansynth.cli import build_command
from gansynth.commands import walk

TYPER_TYPES = re.compile(r"<(str|int|float|bool|path|list\[[a-z]+\])( range)?>|\{[A-Za-z_|]+\}")
VERBS = [path for path, _ in walk(build_command())]


def help_text(path: tuple[str, ...], capsys, monkeypatch) -> str:
    from gansynth.cli import main

    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit) as info:
        main([*path, "--help"])
    assert info.value.code == 0
    return capsys.readouterr().out


def examples(text: str) -> list[str]:
    """The command lines of the Examples section (comment lines skipped)."""
    section = text.split("Examples:", 1)[1]
    return [line.strip() for line in section.splitlines() if line.strip().startswith("gansynth")]


def test_every_verb_is_found():
    assert {"fit", "sample", "evaluate", "export", "benchmark", "demo"} <= {p[0] for p in VERBS if p}


@pytest.mark.parametrize("path", VERBS, ids=lambda p: " ".join(p) or "gansynth")
def test_help_reads_at_80_columns_and_ends_with_examples(path, capsys, monkeypatch):
    text = help_text(path, capsys, monkeypatch)
    assert "Examples:" in text and text.rstrip().splitlines()[-1].strip().startswith("gansynth")
    assert 2 <= len(examples(text)) <= 4
    assert "`" not in text, "reStructuredText markup in help"
    assert not TYPER_TYPES.findall(text), f"typer type names as metavars: {TYPER_TYPES.findall(text)}"
    assert all(len(line) <= 80 for line in text.splitlines()), "a help line wider than 80 columns"


@pytest.mark.parametrize("path", [p for p in VERBS if p], ids=" ".join)
def test_examples_are_real_commands(path, capsys, monkeypatch):
    """Each example parses: its verb exists, and every option and value is accepted (nothing runs)."""
    root = build_command()
    for line in examples(help_text(path, capsys, monkeypatch)):
        words = shlex.split(line)[1:]
        command, depth = root, 0
        while hasattr(command, "commands") and depth < len(words) and words[depth] in command.commands:
            command, depth = command.commands[words[depth]], depth + 1
        assert depth >= 1, f"{line}: no such verb"
        if "--help" not in words:
            command.make_context(words[depth - 1], words[depth:])  # raises on an unknown option or a bad value
