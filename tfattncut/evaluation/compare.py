"""Several runs side by side: their evaluation reports in one Markdown table and one plot.

A run's reports are the JSON files in RUN/eval/ (`reports.EVAL_FOLDER`): per-epoch ones
written during training (`reports.epoch_report_path`, with an `epoch`) and any written by
`launch.evaluate --checkpoint=RUN` (no epoch). The table shows each run's newest report
(highest epoch) and its best FID; the plot shows every metric against the epoch, one line
per run.
"""
import collections
import dataclasses
import glob
import os

from tfattncut import json_files, output_folders
from tfattncut.evaluation import charts
from tfattncut.evaluation.reports import EVAL_FOLDER

# Table and plot columns, in this order; std and per-level SWD entries stay in the JSON.
SHOWN = ("fid", "kid", "is", "swd", "psnr", "ssim", "mean_iou", "pixel_accuracy",
         "mean_class_accuracy")
TABLE = "compare.md"
PLOT = "compare.png"


@dataclasses.dataclass
class Run:
    """name: the run folder's name (with parent folders where `run_names` needs them);
    method: model and selector from its config.json; reports: its evaluation reports, by
    epoch (reports without one first)."""
    name: str
    method: str
    reports: list

    @property
    def latest(self):
        return self.reports[-1]

    def series(self, metric):
        """[(epoch, value)] of the reports that have an epoch and the metric."""
        return [(r["epoch"], r["metrics"][metric]) for r in self.reports
                if r.get("epoch") is not None and metric in r["metrics"]]


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_report(report, path):
    """Raises a ValueError naming the file and the field when a report lacks what the table
    and plot read: metrics {name: number}, inception.backbone (a string or null) and, if
    present, a whole-number epoch."""
    remedy = f"keep only evaluation reports in {os.path.dirname(path)}"
    metrics = report.get("metrics")
    if not isinstance(metrics, dict):
        raise ValueError(f"{path} is not an evaluation report (no 'metrics' object); {remedy}.")
    for name, value in metrics.items():
        if not _is_number(value):
            raise ValueError(f"{path}: field 'metrics.{name}' is {value!r}, not a number; "
                             f"{remedy}.")
    inception = report.get("inception")
    if not isinstance(inception, dict) or "backbone" not in inception:
        raise ValueError(f"{path}: no field 'inception.backbone' (which Inception backbone its "
                         f"FID/KID/IS came from; launch.evaluate and training write it); "
                         f"{remedy}.")
    if not isinstance(inception["backbone"], (str, type(None))):
        raise ValueError(f"{path}: field 'inception.backbone' is {inception['backbone']!r}; "
                         f"expected a backbone spec such as 'fid2015:PATH', or null.")
    epoch = report.get("epoch")
    if epoch is not None and not (isinstance(epoch, int) and not isinstance(epoch, bool)):
        raise ValueError(f"{path}: field 'epoch' is {epoch!r}; expected a whole number "
                         f"(or no epoch).")


def run_names(run_dirs):
    """The runs' names in the table and plot: each folder's name, with as many parent folders
    as it takes to tell apart runs whose folders share a name (a/x and b/x for --runs=a/x,b/x).
    The same run given twice is refused: its rows and lines would merge."""
    seen = {}
    for run_dir in run_dirs:
        key = os.path.realpath(run_dir)
        if key in seen:
            raise ValueError(f"--runs names one run twice: {seen[key]} and {run_dir}.")
        seen[key] = run_dir
    parts = [os.path.abspath(run_dir).strip(os.sep).split(os.sep) for run_dir in run_dirs]
    depths = [1] * len(parts)
    while True:
        names = ["/".join(folders[-depth:]) for folders, depth in zip(parts, depths)]
        counts = collections.Counter(names)
        if all(counts[name] == 1 for name in names):
            return names
        # Distinct absolute paths differ at some depth, at the latest once one is whole.
        depths = [depth + (counts[name] > 1) for depth, name in zip(depths, names)]


def load_run(run_dir, name=None):
    """The Run of a run directory; an error says where reports were looked for, or which file
    and field is wrong. name: its name in the table and plot (default: the folder's name)."""
    paths = sorted(glob.glob(os.path.join(run_dir, EVAL_FOLDER, "*.json")))
    reports = []
    for path in paths:
        report = json_files.read_object(path, f"keep only reports in {os.path.dirname(path)}")
        check_report(report, path)
        reports.append(report)
    if not reports:
        raise FileNotFoundError(
            f"--runs: {run_dir} has no evaluation reports (looked for "
            f"{os.path.join(run_dir, EVAL_FOLDER, '*.json')}); write one with "
            f"`python -m launch.evaluate --checkpoint={run_dir} --dataroot=DIR`.")
    reports.sort(key=lambda r: -1 if r.get("epoch") is None else r["epoch"])
    method = "?"
    config_path = os.path.join(run_dir, "config.json")
    if os.path.exists(config_path):
        config = json_files.read_object(config_path, "launch.train writes it")
        method = f"{config.get('model', '?')}/{config.get('selector', '?')}"
    return Run(name or os.path.basename(os.path.normpath(run_dir)), method, reports)


def _cell(metrics, name):
    if name not in metrics:
        return "—"
    std = metrics.get(f"{name}_std")
    return f"{metrics[name]:.4f}" + (f" ± {std:.4f}" if std is not None else "")


def markdown_table(runs):
    """One row per run: its newest report's metrics, the backbone, and its best FID."""
    shown = [m for m in SHOWN if any(m in r.latest["metrics"] for r in runs)]
    with_fid = any(r.series("fid") for r in runs)
    header = ["run", "method", "epoch", "backbone"] + shown + (["best fid (epoch)"] if with_fid
                                                               else [])
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] * 4 + ["---:"] * (len(header) - 4)) + "|"]
    for run in runs:
        latest = run.latest
        epoch = latest.get("epoch")
        cells = [run.name, run.method, "—" if epoch is None else str(epoch),
                 latest["inception"]["backbone"] or "—"]
        cells += [_cell(latest["metrics"], m) for m in shown]
        if with_fid:
            series = run.series("fid")
            best = min(series, key=lambda p: p[1]) if series else None
            cells.append(f"{best[1]:.4f} ({best[0]})" if best else "—")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines + [""] + backbone_notes(runs))


def backbone_notes(runs):
    """Lines warning when the rows' FID/KID/IS are not comparable."""
    backbones = sorted({r.latest["inception"]["backbone"] for r in runs} - {None})
    notes = []
    if len(backbones) > 1:
        notes.append(f"The runs used different Inception backbones ({', '.join(backbones)}): "
                     f"their FID/KID/IS are not comparable with each other.")
    if any(r.latest["inception"]["backbone"] == "random" for r in runs):
        notes.append("Backbone 'random' is for smoke tests only: its FID/KID/IS mean nothing.")
    if not notes and backbones:
        notes.append(f"FID/KID/IS from the Inception backbone {backbones[0]}.")
    return notes


def plot(runs, path):
    """Writes the metric-vs-epoch panels (one per metric, one line per run); returns path,
    or None when no report has an epoch."""
    panels = {}
    for metric in SHOWN:
        lines = {run.name: run.series(metric) for run in runs if run.series(metric)}
        if lines:
            panels[metric] = lines
    return charts.line_chart(panels, path) if panels else None


def compare(run_dirs, output_dir):
    """Writes OUTPUT_DIR/compare.md and (with per-epoch reports) compare.png; returns
    (the Markdown table, the plot's path or None). An earlier comparison's plot is removed
    when this one has none, so the folder never pairs a table with another one's plot."""
    if not run_dirs:
        raise ValueError("--runs names no run; give run directories, comma-separated")
    output_folders.check_output_folder("--output", output_dir)
    runs = [load_run(run_dir, name) for run_dir, name in zip(run_dirs, run_names(run_dirs))]
    table = markdown_table(runs)
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, TABLE), "w") as f:
        f.write(table + "\n")
    plot_path = os.path.join(output_dir, PLOT)
    if os.path.lexists(plot_path):
        os.remove(plot_path)
    return table, plot(runs, plot_path)
