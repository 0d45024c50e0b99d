"""CLI verbs, one module each; every verb parses options, builds a config and calls the Python API.

Each module holds one command function, ``SUMMARY`` (its line in ``gansynth --help``, short enough not to be cut)
and ``EXAMPLES``: the 2-4 real command lines its ``--help`` ends with.
"""

from __future__ import annotations

import sys

import typer

from gansynth.commands import benchmark, demo, evaluate, export, fit, sample, translate

# (command name, verb function), in the order ``gansynth --help`` lists them
COMMANDS = [
    ("fit", fit.fit_command),
    ("sample", sample.sample_command),
    ("evaluate", evaluate.evaluate_command),
    ("export", export.export_command),
    ("benchmark", benchmark.benchmark_command),
    ("demo", demo.demo_command),
]
# (command name, typer sub-app): verbs with verbs of their own (``gansynth translate fit``); each module has
# SUMMARY, EXAMPLES (of the group) and VERB_EXAMPLES (command name → examples)
SUB_APPS = [("translate", translate.translate_app)]
EXAMPLES = [
    ("gansynth demo", "fit → evaluate → export → benchmark on digits"),
    ("gansynth fit ./images", "./images/<class>/*.png → runs/images"),
    ("gansynth export --per-class 5000", "balanced synthetic set of the latest run"),
    ("gansynth fit --help", "options and examples of one verb"),
]
# metavars shown in --help, by parameter name (the rest: N for whole numbers, the upper-case name otherwise)
METAVARS = {
    "out": "DIR",
    "device": "auto|cpu|cuda",
    "checkpoint": "latest|best",
    "precision": "auto|fp32|bf16|fp16",
    "set_": "SECTION.KEY=VALUE",
    "shard": "I/N",
    "classes": "NAME,NAME,...",
    "arms": "ARM,ARM,...",
    "balance_to": "max|N",
    "format": "png|jpg|webp",
    "mixing": "SPEC",
    "ratio_sweep": "R,R,...",
    "truncation": "PSI",
    "min_confidence": "P",
    "size": "PX",
    "resolution": "PX",
    "recipe": "NAME|FILE",
    "json_out": "FILE",
    "weights": "FILE",
    "budget": "TIME",
    "feature_extractor": "NAME",
    "data": "DIR|digits",
}
COMMAND_METAVARS = {
    ("sample", "out"): "FILE.png",
    ("sample", "class_name"): "NAME",
    ("benchmark", "budget"): "auto|fixed",
}


def examples_epilog(examples: list[tuple[str, str]] | tuple = ()) -> str:
    """An ``Examples:`` section for ``--help``: each command on its own line, its comment (if any) on the line above.

    Comments above rather than beside keep every line within 80 columns however long the command. The ``\\b``
    line keeps click from re-wrapping the lines into one paragraph.
    """
    lines = [line for command, comment in examples for line in ([f"# {comment}"] if comment else []) + [command]]
    return "Examples:\n\n\b\n" + "\n".join(lines)


def register_all(app: typer.Typer) -> None:
    """Add every verb to ``app``, its module's ``SUMMARY`` as its line in ``gansynth --help`` and its ``EXAMPLES``
    as the end of its own ``--help``."""
    for name, function in COMMANDS:
        module = sys.modules[function.__module__]
        epilog = examples_epilog(getattr(module, "EXAMPLES", ()))
        app.command(name, epilog=epilog, short_help=getattr(module, "SUMMARY", None))(function)
    for name, sub in SUB_APPS:
        module = sys.modules[sub.registered_commands[0].callback.__module__]
        sub.info.epilog = examples_epilog(module.EXAMPLES)
        for command in sub.registered_commands:
            command.epilog = examples_epilog(module.VERB_EXAMPLES[command.name])
        app.add_typer(sub, name=name, short_help=module.SUMMARY)


def walk(command, path: tuple[str, ...] = ()):
    """``(path, command)`` for a click command and every subcommand below it, depth first."""
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from walk(sub, (*path, name))


def clean_metavars(root) -> None:
    """Give every argument and value-taking option of the click tree under ``root`` a plain metavar.

    typer would print Python types (``<str>``, ``<float range>``, ``<list[str]>``, ``{data}``); these read as what
    to type instead: ``--out DIR``, ``--seed N``, ``--device auto|cpu|cuda``. A metavar given in a command's own
    ``typer.Option(metavar=...)`` is kept.
    """
    for path, command in walk(root):
        for param in getattr(command, "params", []):
            if param.param_type_name == "argument":
                _plain_argument(param)
                continue
            if param.metavar is not None or getattr(param, "is_flag", False) or param.name == "help":
                continue
            key = (path[-1] if path else "", param.name)
            annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
            default = "N" if annotation is int else param.name.rstrip("_").upper()
            param.metavar = COMMAND_METAVARS.get(key, METAVARS.get(param.name, default))


def _plain_argument(param) -> None:
    """``gansynth fit [OPTIONS] DATA`` and ``DATA  Image folder ...``: the upper-case name, without typer's braces
    around a required argument or the Python type after it (both replaced on this one parameter object)."""
    if param.metavar is None:
        param.metavar = param.name.upper()
    param.display_type_rich = lambda ctx: None
    if param.required:
        param._usage_display_name = lambda: param.metavar + ("..." if param.nargs != 1 else "")
