"""Terminal output of ``evaluate`` and ``benchmark`` records: rich tables that fit the console's width.

Formatting only: every number shown is already in the record (``--json`` and report.json keep them complete). At
80 columns a table shows the columns that matter, rounded to what the protocol resolves, and no cell is cut to an
ellipsis; a wider console shows more columns. Alarms read as one line per kind, not one paragraph per class.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from gansynth.report import METRIC_LABELS, REPORT_MD, comparison_cells, composition, gain_words, pct

BORDER = 3  # a rich table spends 3 cells per column (two of padding, one rule) and one more on its right edge
SHARE_METRICS = ("precision", "recall", "density", "coverage", "label_fidelity", "memorization", "accuracy")


@dataclass(frozen=True)
class Column:
    """One column of a :func:`fitted_table`.

    Attributes:
        header: column title; it may wrap at its spaces, never inside a word.
        justify: ``left`` for names, ``right`` for numbers.
        priority: 0 is always shown; higher numbers are added, lowest first, while the console is wide enough.
        wraps: cells may wrap (and fold long words) instead of setting the column's width.
    """

    header: str
    justify: str = "right"
    priority: int = 0
    wraps: bool = False


def _cell_len(cell: str) -> int:
    return Text.from_markup(cell).cell_len


def _min_width(column: Column, cells: list[str]) -> int:
    """The narrowest width that shows the header's longest word and (unless it wraps) every cell whole."""
    words = max((len(word) for word in column.header.split()), default=1)
    if column.wraps:
        return max(words, min(12, max((_cell_len(c) for c in cells), default=1)))
    return max([words, *(_cell_len(c) for c in cells)])


def choose_columns(columns: list[Column], rows: list[list[str]], width: int) -> list[int]:
    """Indices of the columns to show: every priority-0 column, then each priority group (lowest first) that fits
    with every header on one line."""
    widths = [_natural_width(col, [row[i] for row in rows]) for i, col in enumerate(columns)]
    chosen = [i for i, col in enumerate(columns) if col.priority == 0]
    used = 1 + sum(widths[i] + BORDER for i in chosen)
    for priority in sorted({col.priority for col in columns} - {0}):
        group = [i for i, col in enumerate(columns) if col.priority == priority]
        extra = sum(widths[i] + BORDER for i in group)
        if used + extra <= width:
            chosen += group
            used += extra
    return sorted(chosen)


def _natural_width(column: Column, cells: list[str]) -> int:
    """The width that shows the header on one line and every cell whole."""
    return max([len(column.header), *(_cell_len(c) for c in cells)])


def shrink_widths(natural: list[int], minimum: list[int], available: int) -> list[int]:
    """Column widths that sum to at most ``available``: cells are taken, one at a time, from the column with the most
    room above its minimum (headers then wrap at their spaces); never below the minimums."""
    widths = list(natural)
    while sum(widths) > available:
        room = [w - m for w, m in zip(widths, minimum)]
        widest = max(range(len(widths)), key=room.__getitem__)
        if room[widest] <= 0:
            break
        widths[widest] -= 1
    return widths


def fitted_table(title: str, columns: list[Column], rows: list[list[str]], width: int) -> Table:
    """A rich table of the columns that fit ``width`` (see :func:`choose_columns`); cells may hold rich markup.

    Every column is at least as wide as its longest cell (or, for a wrapping column, 12 cells) and its header's
    longest word, so headers wrap at spaces instead of a cell being cut to an ellipsis. Widths are fixed here, not
    left to rich, whose even shrinking can push a table past the console's edge.
    """
    shown = choose_columns(columns, rows, width)
    cells = [[row[i] for row in rows] for i in shown]
    minimum = [_min_width(columns[i], c) for i, c in zip(shown, cells)]
    natural = [_natural_width(columns[i], c) for i, c in zip(shown, cells)]
    widths = shrink_widths(natural, minimum, width - 1 - BORDER * len(shown))
    table = Table(title=title, title_justify="left")
    for i, w in zip(shown, widths):
        table.add_column(columns[i].header, justify=columns[i].justify, overflow="fold", width=w)
    for row in rows:
        table.add_row(*(row[i] for i in shown))
    return table


# --- numbers ------------------------------------------------------------------------------------------------------


def fmt_share(value: float | None) -> str:
    """A share or ratio such as precision: 2 decimals (a few hundred images resolve no finer)."""
    return "—" if value is None else f"{value:.2f}"


def fmt_fid(value: float | None) -> str:
    """FID: 3 significant digits, whole numbers from 100 on (``0.0515``, ``12.3``, ``148``)."""
    if value is None:
        return "—"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def fmt_value(key: str, value: object) -> str:
    """An evaluate metric rounded for reading: shares 2 decimals, FID 3 and KID 2 significant digits."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not isinstance(value, float):
        return str(value)
    if key in SHARE_METRICS:
        return fmt_share(value)
    if key == "kid":
        return f"{value:.2g}"
    return fmt_fid(value)


# --- evaluate -----------------------------------------------------------------------------------------------------

_OVERALL = (
    ("fid", "FID", "lower is better"),
    ("kid", "KID", "lower is better"),
    ("is", "IS", "higher is better (inception only)"),
    ("precision", "precision", "share of generated images that look real (k=3)"),
    ("recall", "recall", "share of real variety the generator covers (k=3)"),
    ("density", "density", "≈1 for real-like samples (k=5)"),
    ("coverage", "coverage", "share of real neighbourhoods hit (k=5)"),
    ("label_fidelity", "label fidelity", "domain classifier agrees with the asked class"),
    ("memorization", "memorization", "≈0.05 for fresh samples; near 1 when copying"),
    ("per_class_fid_mean", "per-class FID (mean)", "lower is better"),
)
# (record key, header, priority): priority 0 is shown at any width, the rest when the console is wide enough
_PER_CLASS = (
    ("num_generated", "generated", 2),
    ("num_real", "real", 2),
    ("fid", "FID", 0),
    ("precision", "precision", 0),
    ("recall", "recall", 0),
    ("density", "density", 1),
    ("coverage", "coverage", 0),
    ("label_fidelity", "label fidelity", 0),
)


def overall_table(record: dict, width: int) -> Table:
    """Overall metrics: name, rounded value, what it means."""
    columns = [Column("metric", "left"), Column("value"), Column("meaning", "left", priority=1, wraps=True)]
    rows = [[label, fmt_value(key, record.get(key)), meaning] for key, label, meaning in _OVERALL]
    worst = record.get("per_class_fid_worst")
    if worst:
        rows.append(["per-class FID (worst)", fmt_fid(worst["fid"]), f"class {worst['class']}"])
    return fitted_table("gansynth evaluate", columns, rows, width)


def per_class_table(record: dict, width: int) -> Table:
    """One row per class; ``alarm`` names the alarm kinds raised for that class."""
    kinds: dict[str, list[str]] = {}
    for alarm in record.get("alarms", []):
        if alarm.get("class") is not None:
            kinds.setdefault(str(alarm["class"]), []).append(alarm["kind"])
    columns = [Column("class", "left", wraps=True)]
    columns += [Column(header, priority=priority) for _, header, priority in _PER_CLASS]
    columns.append(Column("alarm", "left"))
    rows = []
    for name, row in record["per_class"].items():
        alarm = ", ".join(kinds.get(name, ["collapse"] if row.get("collapse") else []))
        cells = [fmt_value(key, row.get(key)) for key, _, _ in _PER_CLASS]
        rows.append([escape(name), *cells, f"[bold red]{alarm}[/]" if alarm else "—"])
    return fitted_table("per class", columns, rows, width)


def alarm_lines(record: dict, width: int) -> list[str]:
    """One summary line per alarm kind, then (for per-class kinds) one line naming the classes.

    A class list longer than the line ends with ``(+N more)``; the per-class table and ``--json`` hold the rest.
    """
    from gansynth.metrics.score import COLLAPSE_THRESHOLD

    groups: dict[str, list[dict]] = {}
    for alarm in record.get("alarms", []):
        groups.setdefault(alarm["kind"], []).append(alarm)
    lines = []
    for kind, alarms in groups.items():
        classes = [str(a["class"]) for a in alarms if a.get("class") is not None]
        if not classes:  # a run-wide alarm (memorization, weak extractor): its own message, once
            lines += [f"{kind.replace('_', ' ')} alarm: {a['message']}" for a in alarms]
            continue
        why = f" (recall or coverage < {COLLAPSE_THRESHOLD:g}: mode collapse, or not learned yet)"
        lines.append(
            f"{kind} alarm in {len(classes)} of {len(record['per_class'])} classes{why if kind == 'collapse' else ''}"
        )
        lines.append(class_list("  classes: ", classes, width))
    return lines


def class_list(prefix: str, names: list[str], width: int) -> str:
    """``prefix`` + comma-separated names that fit in ``width`` cells, then ``(+N more)`` for the rest."""
    for shown in range(len(names), 0, -1):
        rest = len(names) - shown
        line = prefix + ", ".join(names[:shown]) + (f" (+{rest} more)" if rest else "")
        if len(line) <= width:
            return line
    return f"{prefix}{len(names)} classes (see the per-class table)"


def print_metrics(record: dict, console: Console | None = None) -> None:
    """An ``evaluate`` record as rich tables fitted to the console (overall, per class), protocol, notes, alarms."""
    console = console or Console(highlight=False)
    protocol = record["protocol"]
    console.print(overall_table(record, console.width))
    console.print(per_class_table(record, console.width))
    accuracy = protocol.get("domain_heldout_accuracy")
    console.print(
        f"feature extractor: [bold]{protocol['feature_extractor']}[/] "
        f"(weights sha256 {str(protocol['weights_sha256'])[:12]}); "
        f"{protocol['num_generated']} generated vs {protocol['num_real']} real images at {protocol['resolution']} px; "
        f"domain classifier held-out accuracy: {fmt_share(accuracy)}"
    )
    for note in record.get("notes", []):
        console.print(f"note: {note}", markup=False)
    for line in alarm_lines(record, console.width):
        console.print(Text(line, style="bold yellow" if not line.startswith(" ") else ""))


# --- benchmark ----------------------------------------------------------------------------------------------------


def arms_table(record: dict, width: int) -> Table:
    """Arms: composition and accuracy, balanced accuracy, macro-F1 (percent, mean ± std over seeds)."""
    columns = [Column("arm", "left"), Column("images real + synth.", priority=1)]
    columns += [Column(label) for label in METRIC_LABELS.values()]
    rows = [
        [arm, " + ".join(map(str, composition(record, arm))), *(pct(row[m]) for m in METRIC_LABELS)]
        for arm, row in record["arms"].items()
    ]
    return fitted_table("gansynth benchmark", columns, rows, width)


def comparisons_table(record: dict, width: int) -> Table:
    """Paired differences of balanced accuracy between arms, with the verdict of each."""
    columns = [Column("comparison", "left", wraps=True), Column("mean ± std"), Column("95% CI")]
    columns += [Column("seeds", priority=1), Column("verdict", "left")]
    rows = [[f"{c['arm']} vs {c['baseline']}", *comparison_cells(c), c["verdict"]] for c in record["comparisons"]]
    return fitted_table("paired differences (balanced accuracy points)", columns, rows, width)


def print_summary(record: dict, console: Console | None = None, report_dir: Path | None = None) -> None:
    """Arms and comparisons as fitted rich tables, the notes, where the report is, then the verdict line last."""
    console = console or Console(highlight=False)
    console.print(arms_table(record, console.width))
    if record["comparisons"]:
        console.print(comparisons_table(record, console.width))
    protocol = record["protocol"]
    console.print(
        f"{protocol['model']}, {protocol['steps']} steps per run, seeds {protocol['seeds']}, "
        f"test: {protocol['data']['num_test']} real images ({protocol['split']['kind']}); "
        f"device {protocol['device']['device']}; {protocol['wall_seconds']:.0f} s"
    )
    for note in protocol["notes"]:
        console.print(f"[yellow]note:[/] {note}")
    for line in selection_lines(record):
        console.print(line, soft_wrap=True, markup=False)
    if report_dir is not None:
        console.print(f"report: {Path(report_dir) / REPORT_MD} (+ report.json and PNG charts)", soft_wrap=True)
    console.print(f"[bold]{record['verdict']}[/]", soft_wrap=True)  # one line, never wrapped: easy to grep


def selection_lines(record: dict) -> list[str]:
    """The validation choices (budget, mixing) and the recommendation, one line each; empty for older records."""
    selection, lines = record.get("selection") or {}, []
    budget = selection.get("budget") or {}
    if budget.get("mode") == "auto":
        tried = ", ".join(f"{h['steps']}: {h['validation_balanced_accuracy'] * 100:.1f}" for h in budget["history"])
        lines.append(f"budget (validation, real only; steps: balanced accuracy): {tried} → {budget['steps']} steps")
    mixing = selection.get("mixing") or {}
    if mixing.get("candidates"):
        folds = (selection.get("validation") or {}).get("folds", 1)
        how = f"{folds}-fold cross-validation" if folds > 1 else "validation"
        lines.append(f"mixing chosen on {how}: {mixing['chosen_label']}")
        if mixing.get("synthetic_gain"):
            lines.append(gain_words(mixing["synthetic_gain"]))
    if record.get("recommendation"):
        lines.append(f"recommendation: {record['recommendation']}")
    return lines
