"""The method study's report: scores of runs -> means with 95 % intervals, paired
differences against CUT in words, and the Markdown page.

Pure bookkeeping on the score files `launch.study` writes (tfattncut.training.study runs and
scores the runs), so a report can be rebuilt on any machine from STUDY_DIR/scores alone.
"""
import glob
import os
import textwrap

import numpy as np

from tfattncut import json_files
from tfattncut.evaluation import statistics

REFERENCE = "cut"
# (key, label, higher is better) of the per-run scores, in report order.
METRICS = (("downstream_miou", "downstream mIoU", True),
           ("label_miou", "label mIoU (FCN score)", True),
           ("fid_seg", "FID (segmenter)", False),
           ("kid_seg", "KID (segmenter)", False),
           ("fid_inception", "FID (Inception)", False),
           ("kid_inception", "KID (Inception)", False),
           ("step_time_s", "step time (s)", False),
           ("images_per_s", "images/s", True))
PAIRED = ("downstream_miou", "label_miou", "fid_seg")
# The scores measured by the seed's B segmenter: two runs' are compared only when one
# segmenter scored both (`_scorer`).
SCORED_BY_SEGMENTER = ("label_miou", "fid_seg", "kid_seg")
# (score key, TensorBoard tag prefix, report heading) of the scalar series a run's scores keep
# from its logs, to show how a method's internals moved over training.
SERIES = (("zero_entropy_fraction", "selection/zero_entropy_fraction/",
           "Zero-entropy rows of QS-Attn (fraction of positions tied at entropy 0, mean over "
           "seeds)"),
          ("attention_mask", "attention/mask_",
           "Attention masks of uag (on the logged training images: each mask's mean and its "
           "share above --uag_threshold, mean over seeds)"))
# (key, label, digits) of the README's headline table.
HEADLINE = (("downstream_miou", "downstream mIoU", 3), ("label_miou", "label mIoU", 3),
            ("fid_seg", "FID (segmenter)", 1))
# The README block `--readme` rewrites: everything between these two lines.
HEADLINE_START = "<!-- study headline: written by launch.study --readme -->"
HEADLINE_END = "<!-- /study headline -->"


def _read_scores(path):
    """A score file; one that is not is an error naming it."""
    again = "delete it and the study scores that run again"
    scores = json_files.read_object(path, again)
    if "seed" not in scores:
        raise ValueError(f"{path} is not a study score file (no seed); {again}")
    return scores


def run_name(variant, seed):
    """A run's directory and score-file name."""
    return f"{variant}_seed{seed}"


def load_scores(score_dirs):
    """(runs {(variant, seed): scores}, baselines {seed: scores}) from STUDY_DIR/scores
    folders; a run found in several folders is an error naming both files."""
    runs, baselines, sources = {}, {}, {}
    for directory in score_dirs:
        for path in sorted(glob.glob(os.path.join(directory, "scores", "*.json"))):
            scores = _read_scores(path)
            if os.path.basename(path).startswith("baseline_seed"):
                baselines.setdefault(scores["seed"], scores)
                continue
            key = (scores["variant"], scores["seed"])
            if key in sources:
                raise ValueError(f"{run_name(*key)} was scored twice: {sources[key]} and {path};"
                                 f" keep one")
            runs[key], sources[key] = scores, path
    return runs, baselines


def summarise(runs, baselines, variants, planned):
    """The report's numbers: per variant and metric the seeds' values and their interval,
    the paired differences against CUT, the baselines' intervals, and the runs that failed
    (`Study.record_failure`), which the means leave out. `planned`: the (variant, seed) keys
    the command trains; with the scored ones they are the study's size (a command that trains
    a subset still reports every score in its folder)."""
    summary = {"variants": {}, "paired_vs_cut": {}, "baselines": {},
               "failed": {run_name(*key): r["failed"] for key, r in sorted(runs.items())
                          if r.get("failed")}}
    scored = {key: r for key, r in runs.items() if not r.get("failed")}
    for variant in variants:
        seeds = sorted(seed for v, seed in scored if v == variant)
        if not seeds:
            continue
        entry = {"seeds": seeds, "metrics": {}}
        for key, _, _ in METRICS:
            values = {seed: scored[(variant, seed)][key] for seed in seeds
                      if scored[(variant, seed)].get(key) is not None}
            if values:
                entry["metrics"][key] = {"values": values,
                                         **statistics.mean_interval(values.values()).to_dict()}
        summary["variants"][variant] = entry
    reference = summary["variants"].get(REFERENCE)
    for variant, entry in summary["variants"].items():
        if variant == REFERENCE or reference is None:
            continue
        comparisons = {}
        for key in PAIRED:
            if key in entry["metrics"] and key in reference["metrics"]:
                values = entry["metrics"][key]["values"]
                if key in SCORED_BY_SEGMENTER:
                    values = {seed: value for seed, value in values.items()
                              if _scorer(scored[(variant, seed)], baselines.get(seed))
                              == _scorer(scored.get((REFERENCE, seed)), baselines.get(seed))}
                interval, seeds = statistics.paired_difference(
                    values, reference["metrics"][key]["values"])
                if interval is not None:
                    comparisons[key] = {**interval.to_dict(), "seeds": seeds}
        summary["paired_vs_cut"][variant] = comparisons
    for key in ("raw_a_downstream_miou", "b_downstream_miou", "raw_test_a_label_miou",
                "raw_test_a_fid_seg"):
        values = [b[key] for b in baselines.values() if key in b]
        if values:
            summary["baselines"][key] = statistics.mean_interval(values).to_dict()
    summary["retrained_segmenters"] = [
        {"seed": seed, "segmenter": identity, "machine": retrained.get("machine", ""),
         "runs": sorted(run_name(*key) for key, r in runs.items()
                        if key[1] == seed and r.get("segmenter") == identity),
         **{key: retrained[key] for key in ("raw_test_a_label_miou", "raw_test_a_fid_seg")},
         **{"original_" + key: baseline[key]
            for key in ("raw_test_a_label_miou", "raw_test_a_fid_seg")}}
        for seed, baseline in sorted(baselines.items())
        for identity, retrained in sorted(baseline.get("retrained_segmenters", {}).items())]
    timed = [r["wall_minutes"] for r in runs.values() if r.get("wall_minutes") is not None]
    summary["steps"] = sorted({r["steps"] for r in runs.values() if r.get("steps")})
    # Median step time x steps: training alone, without pauses, resume gaps or start-up.
    stepped = [r["step_time_s"] * r["steps"] for r in runs.values()
               if r.get("step_time_s") and r.get("steps")]
    summary["cost"] = {"runs": len(runs), "planned": len(set(planned) | set(runs)),
                       "timed_runs": len(timed),
                       "wall_hours": sum(timed) / 60, "stepped_runs": len(stepped),
                       "step_hours": sum(stepped) / 3600,
                       "machines": sorted({r["machine"] for r in runs.values() if "machine" in r})}
    return summary


def _scorer(scores, baseline):
    """Which B segmenter scored a run: its fingerprint, or None for the seed's original
    (runs scored before fingerprints were recorded had no other)."""
    identity = (scores or {}).get("segmenter")
    return None if identity == (baseline or {}).get("segmenter") else identity


def _interval(entry):
    return statistics.Interval(entry["mean"], entry["ci95"], entry["n"])


def _ranked(variants):
    """Variants by mean downstream mIoU, best first."""
    return sorted(variants, key=lambda v: -variants[v]["metrics"].get(
        "downstream_miou", {"mean": -1.0})["mean"])


def format_headline(summary, report_link):
    """The README's block: how far the study is, its reference lines and the ranked table of
    the three metrics a user chooses by; `report_link`: the full page, relative to the
    README."""
    variants = summary["variants"]
    runs, planned = summary["cost"]["runs"], summary["cost"]["planned"]
    steps = "/".join(str(s) for s in summary["steps"]) or "?"
    baselines = summary["baselines"]

    def reference(key):
        return _interval(baselines[key]).format(3) if key in baselines else "–"

    paragraph = (
        f"The headline of the bundled study ([{report_link}]({report_link})): {runs} of "
        f"{planned} runs scored"
        + (f" ({len(summary['failed'])} failed: see the report)" if summary["failed"] else "")
        + f"{'' if runs >= planned else ', in progress'}, {steps} training steps each. "
        "Means ± 95 % intervals over seeds (`(n=1)`: one seed so far), ranked by "
        "downstream mIoU on testB. Reference lines: a segmenter trained on raw A (the floor) "
        f"{reference('raw_a_downstream_miou')}, one trained on B (the ceiling) "
        f"{reference('b_downstream_miou')}; the label mIoU of the untranslated testA "
        f"{reference('raw_test_a_label_miou')}. " + _top_sentence(variants, _ranked(variants), 3))
    lines = [textwrap.fill(paragraph, width=95, break_on_hyphens=False), "",
             "| method | seeds | " + " | ".join(label for _, label, _ in HEADLINE) + " |",
             "|---|---:|" + "---:|" * len(HEADLINE)]
    for variant in _ranked(variants):
        metrics = variants[variant]["metrics"]
        cells = [_interval(metrics[key]).format(digits) if key in metrics else "–"
                 for key, _, digits in HEADLINE]
        lines.append(f"| {variant} | {len(variants[variant]['seeds'])} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def replace_headline(path, block):
    """Puts `block` between the HEADLINE_START and HEADLINE_END lines of the file PATH,
    leaving the rest of the file as it was."""
    with open(path) as f:
        text = f.read()
    start, end = text.find(HEADLINE_START + "\n"), text.find(HEADLINE_END)
    if start < 0 or end < start:
        raise ValueError(f"--readme={path}: no block to replace; put the lines "
                         f"'{HEADLINE_START}' and '{HEADLINE_END}' where the table goes")
    start += len(HEADLINE_START) + 1
    with open(path, "w") as f:
        f.write(text[:start] + block + text[end:])


def _top_sentence(variants, ranked, digits):
    """Which method has the highest mean downstream mIoU, and how many others this budget
    cannot tell apart from it (their 95 % intervals overlap its own)."""
    scored = {v: _interval(variants[v]["metrics"]["downstream_miou"]) for v in ranked
              if "downstream_miou" in variants[v]["metrics"]}
    if not scored:
        return "No downstream mIoU yet."
    top, *others = scored  # ranked: highest mean first
    sentence = f"Highest mean downstream mIoU: **{top}** ({scored[top].format(digits)})"
    if scored[top].n < 2:
        return sentence + "; one seed so far, so no interval to rank by."
    seeded = [v for v in others if scored[v].n >= 2]
    tied = [v for v in seeded if scored[top].overlaps(scored[v])]
    methods = f"other method{'' if len(seeded) == 1 else 's'} with two or more seeds"
    if not tied:
        return sentence + f"; its interval is clear of those of the {len(seeded)} {methods}."
    return (sentence + f"; its interval overlaps those of {len(tied)} of the {len(seeded)} "
            f"{methods}, which this budget does not tell apart from it (the report's paired "
            "comparisons with CUT are the sharper test).")


def format_report(summary, settings, image_dir=""):
    """The Markdown page: how far the study is, the headline, the ranked table, the paired
    comparisons, the baselines, how it was made; `image_dir` is where chart.png and
    samples.png are relative to the page."""
    variants = summary["variants"]
    ranked = _ranked(variants)
    shown = [(key, label) for key, label, _ in METRICS
             if any(key in variants[v]["metrics"] for v in variants)]
    cost = summary["cost"]
    planned = cost["planned"]
    lines = ["# Method study: which method keeps the labels and looks real", "",
             "```bash", f"python -m launch.study {settings.command}".rstrip(), "```", "",
             f"**{cost['runs']} of {planned} runs scored**"
             + ("" if cost["runs"] >= planned else
                " (the same command continues the study; it skips scored runs)")
             + f". Machine: {'; '.join(cost['machines']) or 'not recorded'}. "
             f"Wall time (training and scoring, baselines excluded): "
             f"{cost['wall_hours']:.1f} h over the {cost['timed_runs']} "
             f"run{'' if cost['timed_runs'] == 1 else 's'} that recorded it (pauses and other "
             f"work on the machine included); training alone, as each run's median step time "
             f"times its steps: {cost['step_hours']:.1f} h over {cost['stepped_runs']} run"
             f"{'' if cost['stepped_runs'] == 1 else 's'}.",
             ""]
    if ranked:
        lines += [_top_sentence(variants, ranked, 4) + " Means ± 95 % confidence intervals "
                  "(Student's t) over seeds.", ""]
    lines += ["| rank | method | seeds | " + " | ".join(label for _, label in shown) + " |",
              "|---:|---|---:|" + "---:|" * len(shown)]
    for rank, variant in enumerate(ranked, 1):
        cells = []
        for key, _ in shown:
            entry = variants[variant]["metrics"].get(key)
            cells.append(_interval(entry).format(4) if entry else "–")
        lines.append(f"| {rank} | {variant} | {len(variants[variant]['seeds'])} | "
                     + " | ".join(cells) + " |")
    if summary["failed"]:
        lines += ["", "Runs that failed, left out of the means (the score file says why; delete "
                  "it to retry the run):", ""]
        lines += [f"- {name}: {reason}" for name, reason in summary["failed"].items()]
    baselines = summary["baselines"]
    names = {"raw_a_downstream_miou": "segmenter trained on raw A (floor), mIoU on testB",
             "b_downstream_miou": "segmenter trained on B (ceiling), mIoU on testB",
             "raw_test_a_label_miou": "B segmenter on untranslated testA (label mIoU reference)",
             "raw_test_a_fid_seg": "FID (segmenter) of untranslated testA vs testB"}
    if baselines:
        lines += ["", "Reference lines (per seed, same segmenter settings):", ""]
        lines += [f"- {names[key]}: {_interval(entry).format(4)}"
                  for key, entry in baselines.items()]
    if summary.get("retrained_segmenters"):
        lines += ["", "Runs scored by a B segmenter trained again (its training does not "
                  "reproduce bit for bit across CPUs, so the original was lost with the machine "
                  "that trained it; the study now keeps the weights in "
                  f"{os.path.join(settings.study_dir, 'segmenters')}/): "
                  "their label mIoU and FID (segmenter) come from that scorer, and are read "
                  "against its own untranslated-testA numbers, and a paired comparison of them "
                  "leaves out a seed whose two runs had different scorers. Downstream mIoU does "
                  "not use it.", ""]
        lines += [f"- seed {r['seed']}: {', '.join(r['runs']) or 'no run yet'}; untranslated "
                  f"testA label mIoU {r['raw_test_a_label_miou']:.4f} (original scorer: "
                  f"{r['original_raw_test_a_label_miou']:.4f}), FID (segmenter) "
                  f"{r['raw_test_a_fid_seg']:.4f} (original: "
                  f"{r['original_raw_test_a_fid_seg']:.4f}); trained on {r['machine']}"
                  for r in summary["retrained_segmenters"]]
    if summary["paired_vs_cut"]:
        lines += ["", "## Against CUT, paired by seed", ""]
        labels = {key: label for key, label, _ in METRICS}
        better = {key: higher for key, _, higher in METRICS}
        for variant, comparisons in summary["paired_vs_cut"].items():
            for key, entry in comparisons.items():
                lines.append("- " + statistics.describe_difference(
                    _interval(entry), labels[key], variant, REFERENCE, better[key]))
    for key, _, heading in SERIES:
        rows = [f"- {variant}, {tag}: " + ", ".join(f"step {step}: {value:.3f}"
                                                   for step, value in points)
                for variant, tags in summary.get("series", {}).get(key, {}).items()
                for tag, points in tags.items()]
        if rows:
            lines += ["", f"## {heading}", ""] + rows
    lines += ["", "## How this was made", "",
              f"- presets/variants: {', '.join(settings.variants)}; seeds: "
              f"{', '.join(str(s) for s in settings.seeds)}",
              f"- shared training flags: `{' '.join(settings.train_flags) or '(none)'}`",
              f"- segmenter: {settings.segmenter_images} training images, "
              f"{settings.segmenter_epochs} epochs, width {settings.segmenter_width}",
              "- FID/KID (segmenter) use the seed's B-trained segmenter as feature space: "
              "domain-specific, not comparable with published Inception FIDs.",
              "", f"![downstream mIoU per method]({image_dir}chart.png)", "",
              f"![sample grid: testA inputs, each method's lowest-seed translation, real testB]"
              f"({image_dir}samples.png)"]
    return "\n".join(lines) + "\n"


def series_summary(runs):
    """{SERIES key: {variant: {tag: [[step, mean over seeds], ...]}}} at the first, middle and
    last logged step common to the variant's seeds."""
    summary = {}
    for key, _, _ in SERIES:
        per_tag = {}
        for (variant, _), scores in sorted(runs.items()):
            for tag, points in (scores.get(key) or {}).items():
                per_tag.setdefault(variant, {}).setdefault(tag, []).append(dict(points))
        for variant, tags in per_tag.items():
            for tag, per_seed in tags.items():
                steps = sorted(set.intersection(*(set(p) for p in per_seed)))
                if steps:
                    chosen = sorted({steps[0], steps[len(steps) // 2], steps[-1]})
                    summary.setdefault(key, {}).setdefault(variant, {})[tag] = [
                        [int(step), float(np.mean([p[step] for p in per_seed]))]
                        for step in chosen]
    return summary
