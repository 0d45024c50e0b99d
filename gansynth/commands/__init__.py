"""CLI verbs, one module each; every verb parses options, builds a config and calls the Python API."""

from __future__ import annotations

import importlib

import typer

# (command name, module under gansynth.commands, function or typer sub-app); modules that do not exist are skipped
COMMANDS = [
    ("fit", "fit", "fit_command"),
    ("sample", "sample", "sample_command"),
    ("evaluate", "evaluate", "evaluate_command"),
    ("export", "export", "export_command"),
    ("benchmark", "benchmark", "benchmark_command"),
    ("demo", "demo", "demo_command"),
    ("translate", "translate", "translate_app"),
]


def register_all(app: typer.Typer) -> None:
    for name, module, function in COMMANDS:
        try:
            mod = importlib.import_module(f"gansynth.commands.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"gansynth.commands.{module}":
                raise
            continue
        target = getattr(mod, function)
        if isinstance(target, typer.Typer):  # a verb with verbs of its own (``gansynth translate fit``)
            app.add_typer(target, name=name)
        else:
            app.command(name)(target)
