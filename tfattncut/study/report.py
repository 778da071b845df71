"""Writing the study's report: STUDY_DIR/report.json (the numbers), report.md (the page, also
at --doc), chart.png, samples.png and the README's headline, from the score files alone."""
import os

from tfattncut import json_files
from tfattncut.evaluation import charts
from tfattncut.study import grid, page, plan, scores, summary

# The report's files in STUDY_DIR, beside page.CHART and page.SAMPLES.
REPORT_MD = "report.md"
REPORT_JSON = "report.json"


def write_report(settings, scorers, data, merge_dirs=()):
    """Writes the report of every score in STUDY_DIR and `merge_dirs` (all measured by
    `scorers`); returns the summary."""
    records = scores.load([settings.study_dir, *merge_dirs], scorers)
    if not records:
        raise FileNotFoundError(
            f"--study_dir={settings.study_dir}" + "".join(f", {d}" for d in merge_dirs)
            + ": no scores/*.json to report (a mistyped folder?); nothing written")
    numbers = summary.summarise(records, scorers, settings)
    json_files.write_atomic({"summary": numbers, "runs": [records[k] for k in sorted(records)]},
                            os.path.join(settings.study_dir, REPORT_JSON), sort_keys=True)
    with open(os.path.join(settings.study_dir, REPORT_MD), "w") as f:
        f.write(page.report(numbers, settings))
    if settings.doc_path:
        doc_dir = os.path.dirname(settings.doc_path) or "."
        os.makedirs(doc_dir, exist_ok=True)
        with open(settings.doc_path, "w") as f:
            f.write(page.report(numbers, settings,
                                os.path.relpath(settings.study_dir, doc_dir) + "/"))
    if settings.readme_path:
        link = settings.doc_path or os.path.join(settings.study_dir, REPORT_MD)
        page.replace_headline(settings.readme_path, page.headline(
            numbers, os.path.relpath(link, os.path.dirname(settings.readme_path) or ".")))
    screen = numbers["stages"].get("screen")
    if screen:
        means = {v: e["metrics"][plan.PRIMARY_METRIC]["mean"]
                 for v, e in screen["variants"].items() if plan.PRIMARY_METRIC in e["metrics"]}
        if means:
            charts.bar_chart(means, os.path.join(settings.study_dir, page.CHART),
                             "Downstream mIoU on testB (screen, mean over seeds)")
        grid.draw([settings.study_dir, *merge_dirs],
                  {v: plan.run_name(v, settings.sample_seed) for v in screen["variants"]},
                  data, os.path.join(settings.study_dir, page.SAMPLES))
    return numbers
