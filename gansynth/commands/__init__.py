"""CLI verbs, one module each; every verb parses options, builds a config and calls the Python API."""

from __future__ import annotations

import importlib

import typer

# (command name, module under gansynth.commands, function name); modules that do not exist yet are skipped
COMMANDS = [
    ("fit", "fit", "fit_command"),
    ("sample", "sample", "sample_command"),
    ("evaluate", "evaluate", "evaluate_command"),
    ("export", "export", "export_command"),
    ("benchmark", "benchmark", "benchmark_command"),
    ("demo", "demo", "demo_command"),
]


def register_all(app: typer.Typer) -> None:
    for name, module, function in COMMANDS:
        try:
            mod = importlib.import_module(f"gansynth.commands.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"gansynth.commands.{module}":
                raise
            continue
        app.command(name)(getattr(mod, function))
