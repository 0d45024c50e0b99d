"""Reports: benchmark records as report.md, report.json and PNG charts (terminal tables: :mod:`gansynth.terminal`).

Formatting only: every number shown here is already in the record.
"""

from __future__ import annotations

from pathlib import Path

from gansynth.io import atomic_write_bytes, atomic_write_json, atomic_write_text, make_dirs

REPORT_JSON, REPORT_MD = "report.json", "report.md"
ARMS_PNG, RECALL_PNG, CONFUSION_PNG, SWEEP_PNG = "arms.png", "per_class_recall.png", "confusion.png", "ratio_sweep.png"
METRIC_LABELS = {"accuracy": "accuracy", "balanced_accuracy": "balanced accuracy", "macro_f1": "macro-F1"}
PERCENT = 100.0
DPI = 120
MAX_WIDTH = 16  # inches
MAX_TICK_LABELS = 20  # class names written on confusion-matrix axes up to this many classes


def pct(summary: dict | None) -> str:
    """``"97.3 ± 0.4"`` (percent) from a ``{"mean", "std"}`` summary of fractions; ``—`` when undefined."""
    if not summary or summary.get("mean") is None:
        return "—"
    return f"{summary['mean'] * PERCENT:.1f} ± {summary['std'] * PERCENT:.1f}"


def composition(record: dict, arm: str) -> tuple[int, int]:
    """``(real, synthetic)`` training images of an arm, summed over classes."""
    counts = record["protocol"]["counts"][arm].values()
    return sum(c["real"] for c in counts), sum(c["synthetic"] for c in counts)


def comparison_cells(c: dict) -> tuple[str, str, str]:
    diff = f"{c['mean'] * PERCENT:+.1f} ± {c['std'] * PERCENT:.1f}"
    ci = "—" if c["ci95"] is None else f"[{c['ci95'][0] * PERCENT:+.1f}, {c['ci95'][1] * PERCENT:+.1f}]"
    return diff, ci, str(c["n"])


# --- files ----------------------------------------------------------------------------------------------------


def write_report(record: dict, out: str | Path) -> list[Path]:
    """Write report.json, report.md and the PNG charts into ``out``; returns the paths written."""
    out = make_dirs(out)
    written = [out / REPORT_JSON, out / REPORT_MD]
    atomic_write_json(written[0], record)
    charts = {ARMS_PNG: arms_chart, RECALL_PNG: recall_chart, CONFUSION_PNG: confusion_chart}
    if record["protocol"].get("ratio_sweep"):
        charts[SWEEP_PNG] = sweep_chart
    for name, draw in charts.items():
        atomic_write_bytes(out / name, _png(draw(record)))
        written.append(out / name)
    atomic_write_text(written[1], markdown(record, [p.name for p in written[2:]]))
    return written


def markdown(record: dict, charts: list[str]) -> str:
    """The report as Markdown: verdict, protocol, tables, charts, notes."""
    p, names = record["protocol"], record["protocol"]["data"]["class_names"]
    lines = ["# gansynth benchmark", "", f"**Verdict:** {record['verdict']}", "", "## Protocol", ""]
    lines += [f"- {item}" for item in _protocol_items(p)]
    lines += ["", "## Arms (percent, mean ± std over seeds)", ""]
    lines += ["| arm | real + synthetic images | accuracy | balanced accuracy | macro-F1 |", "|---|---|---|---|---|"]
    for arm, row in record["arms"].items():
        real, synthetic = composition(record, arm)
        lines.append(f"| {arm} | {real} + {synthetic} | " + " | ".join(pct(row[m]) for m in METRIC_LABELS) + " |")
    if record["comparisons"]:
        lines += ["", "## Paired differences (balanced accuracy points)", ""]
        lines += ["| comparison | mean ± std | 95% CI | seeds | verdict |", "|---|---|---|---|---|"]
        for c in record["comparisons"]:
            lines.append(
                f"| {c['arm']} vs {c['baseline']} | " + " | ".join(comparison_cells(c)) + f" | {c['verdict']} |"
            )
    if p.get("ratio_sweep"):
        lines += [
            "",
            "## Ratio sweep",
            "",
            "| ratio | synthetic images per class | balanced accuracy |",
            "|---|---|---|",
        ]
        for ratio, arm in p["ratio_sweep"].items():
            per_class = next(iter(p["counts"][arm].values()))["synthetic"]
            lines.append(f"| {ratio} | {per_class} | {pct(record['arms'][arm]['balanced_accuracy'])} |")
    arms = list(record["arms"])
    lines += [
        "",
        "## Per-class recall (percent)",
        "",
        "| class | " + " | ".join(arms) + " |",
        "|---" * (len(arms) + 1) + "|",
    ]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(pct(record["arms"][a]["per_class_recall"][name]) for a in arms) + " |")
    lines += ["", "## Charts", ""] + [f"![{Path(c).stem}]({c})" for c in charts]
    if p["notes"]:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in p["notes"]]
    lines += _selection_markdown(record)
    return "\n".join(lines) + "\n"


def gain_words(gain: dict) -> str:
    """The validation gain of the best mixing with synthetic images over the best without, with its interval."""
    low, high = (value * PERCENT for value in gain["ci95"])
    return (
        f"validation gain of {gain['with']} over {gain['without']}: {gain['mean'] * PERCENT:+.1f} points, "
        f"95% interval [{low:+.1f}, {high:+.1f}]"
    )


def _validation_words(validation: dict) -> str:
    """How the validation images were carved, in words (records before K-fold have no ``folds``: one split)."""
    folds = validation.get("folds", 1)
    if folds > 1:
        return (
            f"stratified {folds}-fold cross-validation: each of the {validation['num_validation']} training images "
            f"validated once, by classifiers trained on the other folds (~{validation['num_fit']} images)"
        )
    return f"one stratified split: {validation['num_validation']} images validated, {validation['num_fit']} trained on"


def _selection_markdown(record: dict) -> list[str]:
    """Validation budget and candidate table, then the recommendation: the report's last section."""
    selection = record.get("selection") or {}
    lines = []
    budget, mixing = selection.get("budget") or {}, selection.get("mixing") or {}
    validation = selection.get("validation")
    if validation:
        lines += ["", "## Choices on validation (real training images only; the test split is never read)", ""]
        lines += [f"- validation: {_validation_words(validation)}", ""]
    if budget.get("mode") == "auto":
        lines += [f"- budget: {budget['rule']}", "", "| steps (fit part) | validation balanced accuracy |", "|---|---|"]
        lines += [f"| {h['steps']} | {h['validation_balanced_accuracy'] * PERCENT:.1f} |" for h in budget["history"]]
        lines += ["", f"every arm trains {budget['steps']} steps", ""]
    if mixing.get("candidates"):
        lines += [f"- mixing rule: {mixing['rule']}", "", "| candidate mixing | validation balanced accuracy |"]
        lines[-1] += " validation log-loss |"
        lines += ["|---|---|---|"] + [
            f"| {c['label']} | {c['validation_balanced_accuracy'] * PERCENT:.1f} | {c['validation_log_loss']:.4f} |"
            for c in mixing["candidates"]
        ]
        lines += ["", f"chosen: **{mixing['chosen_label']}**"]
        if mixing.get("synthetic_gain"):
            how = "class-stratified bootstrap of the validated images"
            lines += ["", f"- {gain_words(mixing['synthetic_gain'])} ({how})"]
    if record.get("recommendation"):
        lines += ["", "## Recommendation", "", record["recommendation"]]
    return lines


def _protocol_items(p: dict) -> list[str]:
    split = p["split"]
    if split["kind"] == "held-out":
        test = (
            f"stratified held-out {split['test_fraction']:g} of each class of {split['source']} (seed "
            f"{split['seed']}; indices and files in report.json), never trained on"
        )
    else:
        test = f"{split['source']} (checked: no image shared with the training set)"
    synthetic, classifier, data = p["synthetic"], p["classifier"], p["data"]
    items = [
        f"classifier: timm `{p['model']}` from scratch, {p['steps']} optimizer steps of {classifier['batch_size']} "
        f"per run for every arm ({p['epochs']} epochs of the real training set, floor applied), SGD lr "
        f"{classifier['lr']:g}, crop{' + flip' if classifier['flip'] else ''} augmentation",
        f"seeds: {', '.join(map(str, p['seeds']))} (shared by the arms; comparisons are paired by seed)",
        f"real training set: {data['real_train']} ({data['num_train']} images, {len(data['class_names'])}"
        f" classes, {data['channels']} channel(s), {data['resolution']} px)",
        f"test set: {p['data']['num_test']} real images — {test}",
        "synthetic set: none"
        if synthetic is None
        else f"synthetic set: {synthetic['kind']} {synthetic['path']}; real+synthetic adds {synthetic['policy']}",
        f"verdict rule: {p['verdict_rule']}",
        f"device: {p['device']['device']} ({p['device']['precision']}, {p['device']['torch_threads']} torch threads, "
        f"{p['device']['cpu_count']} CPUs{', ' + p['device']['gpu'] if 'gpu' in p['device'] else ''}); "
        f"wall time {p['wall_seconds']:.0f} s; gansynth {p['gansynth_version']}; {p['created']}",
    ]
    return items


# --- charts (matplotlib's Agg canvas; pyplot and its global backend are never touched) ---------------------------


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png(figure) -> bytes:
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _grouped_bars(ax, groups: list[str], series: dict[str, list[tuple[float | None, float | None]]]) -> None:
    """Bars of ``series[name][group] = (mean, std)`` in percent, one colour per series, std as error bars."""
    import numpy as np

    width = 0.8 / max(1, len(series))
    x = np.arange(len(groups))
    for i, (name, values) in enumerate(series.items()):
        means = [np.nan if m is None else m * PERCENT for m, _ in values]
        stds = [0.0 if s is None else s * PERCENT for _, s in values]
        ax.bar(x + (i - (len(series) - 1) / 2) * width, means, width, yerr=stds, capsize=2, label=name)
    ax.set_xticks(x, groups, rotation=30 if len(groups) > 6 else 0, ha="right" if len(groups) > 6 else "center")
    ax.set_ylim(0, 105)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small", ncols=min(4, len(series)), loc="lower center", bbox_to_anchor=(0.5, 1.0))


def arms_chart(record: dict):
    """Mean ± std of accuracy, balanced accuracy and macro-F1 per arm."""
    figure = _figure(7, 4.5)
    ax = figure.add_subplot()
    series = {arm: [(row[m]["mean"], row[m]["std"]) for m in METRIC_LABELS] for arm, row in record["arms"].items()}
    _grouped_bars(ax, list(METRIC_LABELS.values()), series)
    ax.set_ylabel("percent (mean ± std over seeds)")
    figure.suptitle(f"arms — {record['protocol']['model']}, {len(record['protocol']['seeds'])} seeds")
    return figure


def recall_chart(record: dict):
    """Per-class recall (mean ± std over seeds) of every arm."""
    names = record["protocol"]["data"]["class_names"]
    figure = _figure(min(MAX_WIDTH, max(7, 0.3 * len(names) * len(record["arms"]))), 4.5)
    ax = figure.add_subplot()
    series = {
        arm: [(row["per_class_recall"][n]["mean"], row["per_class_recall"][n]["std"]) for n in names]
        for arm, row in record["arms"].items()
    }
    _grouped_bars(ax, names, series)
    ax.set_ylabel("recall, percent")
    figure.suptitle("per-class recall per arm (mean ± std over seeds)")
    return figure


def confusion_chart(record: dict):
    """Row-normalised confusion matrix of each arm, summed over seeds."""
    import numpy as np

    names = record["protocol"]["data"]["class_names"]
    arms = list(record["confusion"])
    cols = min(3, len(arms))
    rows = -(-len(arms) // cols)
    figure = _figure(3.6 * cols, 3.4 * rows)
    for i, arm in enumerate(arms):
        ax = figure.add_subplot(rows, cols, i + 1)
        matrix = np.asarray(record["confusion"][arm], dtype=np.float64)
        matrix = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        ax.imshow(matrix, vmin=0, vmax=1, cmap="Blues")
        ax.set_title(arm, fontsize="medium")
        if len(names) <= MAX_TICK_LABELS:
            ax.set_xticks(range(len(names)), names, rotation=90, fontsize="x-small")
            ax.set_yticks(range(len(names)), names, fontsize="x-small")
        ax.set_xlabel("predicted", fontsize="small")
        ax.set_ylabel("true", fontsize="small")
    return figure


def sweep_chart(record: dict):
    """Balanced accuracy against the synthetic : largest-real-class ratio, with the real-only arm for reference."""
    sweep = record["protocol"]["ratio_sweep"]
    figure = _figure(6, 4)
    ax = figure.add_subplot()
    ratios = [float(r) for r in sweep]
    rows = [record["arms"][arm]["balanced_accuracy"] for arm in sweep.values()]
    ax.errorbar(
        ratios,
        [r["mean"] * PERCENT for r in rows],
        yerr=[r["std"] * PERCENT for r in rows],
        marker="o",
        capsize=3,
        label="real+synthetic",
    )
    for baseline, style in (("real", "--"), ("rebalanced", ":")):
        if baseline in record["arms"]:
            row = record["arms"][baseline]["balanced_accuracy"]
            ax.axhline(row["mean"] * PERCENT, linestyle=style, color="gray", label=f"{baseline} (mean)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(ratios, [f"{r:g}" for r in ratios])
    ax.set_xlabel("synthetic images per class ÷ largest real class")
    ax.set_ylabel("balanced accuracy, percent")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return figure
