"""Run directories holding only evaluation reports, for the compare tests."""
import json
import os

from tfattncut.evaluation import reports as report_files


def write_run(root, name, selector, reports):
    """A fake run directory: config.json and RUN/eval/*.json reports."""
    run_dir = os.path.join(root, name)
    os.makedirs(run_dir)
    with open(os.path.join(run_dir, "config.json"), "w") as f:
        json.dump({"model": "cut", "selector": selector}, f)
    for index, (epoch, backbone, metrics) in enumerate(reports):
        report = {"inception": {"backbone": backbone}, "metrics": metrics}
        if epoch is None:
            path = os.path.join(run_dir, report_files.EVAL_FOLDER, f"evaluate{index}.json")
        else:
            report["epoch"] = epoch
            path = report_files.epoch_report_path(run_dir, epoch)
        report_files.write_json(report, path)
    return run_dir
