"""The typer app: thin verbs over the Python API, and the one place that turns GansynthError into error:/hint:, exit 2.

Commands live next to their API (``gansynth/commands/*.py``); this module wires them and handles errors.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from gansynth.errors import GansynthError
from gansynth.io import OUTPUT_FAULTS, output_error

try:  # typer >= 0.20 vendors its own click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older typer uses the click package
    from click import exceptions as click_exceptions

app = typer.Typer(
    name="gansynth",
    help="Labeled image folder → class-conditional GAN → measured, balanced synthetic data → downstream benchmark.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: one line per option at 80 columns, not a three-column rich panel
)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def build_command():
    """The click command tree of ``gansynth``: every verb registered, examples and plain metavars in its help."""
    from gansynth.commands import EXAMPLES, clean_metavars, examples_epilog, register_all

    if not app.registered_commands:
        register_all(app)
    app.info.epilog = examples_epilog(EXAMPLES)
    command = typer.main.get_command(app)
    clean_metavars(command)
    return command


def report_error(message: str, hint: str | None) -> None:
    stderr.print(f"[bold red]error:[/] {message}", markup=True, emoji=False)
    if hint:
        stderr.print(f"[yellow]hint:[/] {hint}", markup=True, emoji=False)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors print ``error:``/``hint:`` and exit 2; our bugs keep their tracebacks."""
    command = build_command()
    try:
        code = command.main(args=argv, prog_name="gansynth", standalone_mode=False)
    except GansynthError as exc:
        report_error(exc.message, exc.hint)
        sys.exit(EXIT_USER_ERROR)
    except click_exceptions.NoArgsIsHelpError as exc:
        print(exc.ctx.get_help() if exc.ctx else "")
        sys.exit(0)
    except click_exceptions.UsageError as exc:
        report_error(
            exc.format_message(),
            f"see `{exc.ctx.command_path if exc.ctx else 'gansynth'} --help`",
        )
        sys.exit(EXIT_USER_ERROR)
    except (typer.Abort, KeyboardInterrupt):
        code = EXIT_INTERRUPTED
    except OSError as exc:
        if exc.errno not in OUTPUT_FAULTS:  # a full or read-only disk anywhere; other OSErrors are bugs
            raise
        error = output_error(exc.filename or "a file", exc)
        report_error(error.message, error.hint)
        sys.exit(EXIT_USER_ERROR)
    if code == EXIT_INTERRUPTED:  # Ctrl-C (typer turns KeyboardInterrupt into exit code 130)
        report_error("interrupted", "rerun the same command to continue: `fit --resume` and `export` pick up where "
                     "they stopped")  # fmt: skip
    sys.exit(code if isinstance(code, int) else 0)
