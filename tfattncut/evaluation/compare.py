"""Several runs side by side: their evaluation reports in one Markdown table and one plot.

A run's reports are the JSON files in RUN/eval/ (`evaluate.EVAL_FOLDER`): per-epoch ones
written during training (`evaluate.epoch_report_path`, with an `epoch`) and any written by
`launch.evaluate --checkpoint=RUN` (no epoch). The table shows each run's newest report
(highest epoch) and its best FID; the plot shows every metric against the epoch, one line
per run.
"""
import dataclasses
import glob
import os

from tfattncut import json_files
from tfattncut.evaluation import charts, evaluate

# Table and plot columns, in this order; std and per-level SWD entries stay in the JSON.
SHOWN = ("fid", "kid", "is", "swd", "psnr", "ssim", "mean_iou", "pixel_accuracy",
         "mean_class_accuracy")
TABLE = "compare.md"
PLOT = "compare.png"


@dataclasses.dataclass
class Run:
    """name: the run folder's name; method: model and selector from its config.json;
    reports: its evaluation reports, by epoch (reports without one first)."""
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


def load_run(run_dir):
    """The Run of a run directory; an error says where reports were looked for."""
    paths = sorted(glob.glob(os.path.join(run_dir, evaluate.EVAL_FOLDER, "*.json")))
    reports = []
    for path in paths:
        report = json_files.read_object(path, f"keep only reports in {os.path.dirname(path)}")
        if "metrics" not in report:
            raise ValueError(f"{path} is not an evaluation report (no 'metrics' entry); "
                             f"keep only reports in {os.path.dirname(path)}.")
        reports.append(report)
    if not reports:
        raise FileNotFoundError(
            f"--runs: {run_dir} has no evaluation reports (looked for "
            f"{os.path.join(run_dir, evaluate.EVAL_FOLDER, '*.json')}); write one with "
            f"`python -m launch.evaluate --checkpoint={run_dir} --dataroot=DIR`.")
    reports.sort(key=lambda r: -1 if r.get("epoch") is None else r["epoch"])
    method = "?"
    config_path = os.path.join(run_dir, "config.json")
    if os.path.exists(config_path):
        config = json_files.read_object(config_path, "launch.train writes it")
        method = f"{config.get('model', '?')}/{config.get('selector', '?')}"
    return Run(os.path.basename(os.path.normpath(run_dir)), method, reports)


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
    (the Markdown table, the plot's path or None)."""
    runs = [load_run(run_dir) for run_dir in run_dirs]
    table = markdown_table(runs)
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, TABLE), "w") as f:
        f.write(table + "\n")
    return table, plot(runs, os.path.join(output_dir, PLOT))
