"""The study's Markdown: the report page (docs/study.md) and the README's headline, rendered
from `summary.summarise`'s numbers in small pieces, one per section."""
import collections
import textwrap

from tfattncut.study import plan, scores, statistics
from tfattncut.study.summary import BY_KEY, COMPARED, GAP_CLOSED, METRICS

# The images of STUDY_DIR the page shows (study.report draws them).
CHART = "chart.png"
SAMPLES = "samples.png"

# The README block `--readme` rewrites: everything between these two lines.
HEADLINE_START = "<!-- study headline: written by launch.study --readme -->"
HEADLINE_END = "<!-- /study headline -->"


def _interval(entry, digits):
    return statistics.Interval.from_dict(entry).format(digits)


def _ordered(stage):
    """The stage's variants: when the omnibus test says the methods it tested differ, those
    ranked by mean downstream mIoU, then the rest (left out of the test) by name; else all by
    name (no order is claimed)."""
    variants = stage["variants"]
    if not (stage["omnibus"] and stage["omnibus"]["differ"]):
        return sorted(variants)
    tested = stage["omnibus"]["methods"]
    return (sorted(tested, key=lambda v: -variants[v]["metrics"][plan.PRIMARY_METRIC]["mean"])
            + sorted(set(variants) - set(tested)))


def _table(stage):
    shown = [m for m in METRICS if any(m.key in e["metrics"]
                                       for e in stage["variants"].values())]
    lines = ["| method | seeds | returned input | " + " | ".join(m.label for m in shown) + " |",
             "|---|---:|---:|" + "---:|" * len(shown)]
    for variant in _ordered(stage):
        entry = stage["variants"][variant]
        cells = [_interval(entry["metrics"][m.key], m.digits) if m.key in entry["metrics"]
                 else "–" for m in shown]
        lines.append(f"| {variant} | {len(entry['seeds'])} | {len(entry['collapsed'])} | "
                     + " | ".join(cells) + " |")
    return lines


def _omnibus(stage):
    test = stage["omnibus"]
    if test is None:
        return ("No omnibus test yet (it needs three methods with every seed), so the table "
                "is in name order and no method is ranked.")
    verdict = ("the methods differ, so the table ranks them by mean downstream mIoU"
               if test["differ"] else "the methods are not distinguishable as a group, so "
               "the table is in name order: no ranking is claimed")
    left = (f" Left out of the test for missing or collapsed seeds"
            + (", and so listed unranked after the others" if test["differ"] else "")
            + f": {', '.join(stage['omnibus_left_out'])}." if stage["omnibus_left_out"] else "")
    return (f"Omnibus test of downstream mIoU over {len(test['methods'])} methods and "
            f"{len(test['seeds'])} seeds (blocks): Friedman χ² = "
            f"{test['friedman_statistic']:.2f}, p = {test['friedman_p']:.3g}; block ANOVA "
            f"F = {test['anova_f']:.2f}, p = {test['anova_p']:.3g}: {verdict}.{left}")


def _comparisons(stage):
    lines = []
    for key in COMPARED:
        metric = BY_KEY[key]
        for variant, entry in stage["vs_reference"].get(key, {}).items():
            lines.append("- " + statistics.describe_comparison(
                statistics.PairedComparison.from_dict(entry), metric.label, variant,
                plan.REFERENCE, metric.higher_is_better))
            if entry.get("mixed_seeds"):
                lines.append("  - " + _one_machine(variant, entry, metric))
            if _pairing_decides(entry):
                lines.append("  - " + _with_own_runs(variant, entry, metric))
    return lines


def _seeds(seeds):
    """'seed 109', 'seeds 0, 1 and 2'."""
    return f"seed{'s' if len(seeds) > 1 else ''} {_and([str(s) for s in seeds])}"


def _one_machine(variant, entry, metric):
    """A comparison some of whose seeds paired runs of two machines, without those seeds
    (summary._compare)."""
    mixed = entry["mixed_seeds"]
    lead = (f"{_seeds(mixed)}: the two runs were trained on different machines, so "
            f"{_machines_included(len(mixed) > 1)}; ")
    if entry["one_machine"] is None:
        return lead + "no seed is left to compare on one machine."
    return lead + "without " + ("them" if len(mixed) > 1 else "it") + ", " + (
        statistics.describe_comparison(
            statistics.PairedComparison.from_dict(entry["one_machine"]), metric.label,
            variant, plan.REFERENCE, metric.higher_is_better))


def _with_own_runs(variant, entry, metric):
    """A comparison some of whose seeds paired with CUT trained again on the method's
    machine, paired with CUT's own runs instead (summary._compare)."""
    again = entry["again_seeds"]
    many = len(again) > 1
    lead = (f"{_seeds(again)}: paired with CUT trained again on the method's machine; with "
            f"CUT's own run{'s' if many else ''} instead (another machine, as first "
            "reported), ")
    if entry["own_runs"] is None:
        return lead + "no seed pairs."
    return lead + statistics.describe_comparison(
        statistics.PairedComparison.from_dict(entry["own_runs"]), metric.label, variant,
        plan.REFERENCE, metric.higher_is_better)


def _pairing_decides(comparison):
    """Whether a comparison's verdict changes when its seeds paired with CUT trained again
    are paired with CUT's own runs instead (summary._compare)."""
    return bool(comparison.get("again_seeds")) and (
        _verdict(comparison["own_runs"]) != _verdict(comparison))


def _verdict(comparison):
    """-1, 0 or +1: worse than CUT, not distinguishable, better (after Holm)."""
    if comparison is None or not _differs(comparison["holm_p"]):
        return 0
    return 1 if comparison["mean"] > 0 else -1


def _verdict_words(variant, comparison):
    """'attn_self is worse (-0.067, Holm-adjusted p = 0.049)'."""
    if comparison is None:
        return f"{variant} has no seed to pair"
    words = {-1: "is worse", 0: "is not distinguishable from CUT", 1: "beats CUT"}
    return f"{variant} {words[_verdict(comparison)]} ({_mean_and_p(comparison)})"


def _mean_and_p(comparison):
    """'-0.067, Holm-adjusted p = 0.049' of a comparison with CUT."""
    p = "n/a" if comparison["holm_p"] is None else f"{comparison['holm_p']:.2g}"
    return f"{comparison['mean']:+.3f}, Holm-adjusted p = {p}"


def _differs(holm_p):
    """Whether a comparison's Holm-adjusted p says the two differ."""
    return holm_p is not None and holm_p < statistics.ALPHA


def _machines_included(many):
    """What a seed paired across machines adds to its difference, for one seed or several."""
    return ("their differences include" if many else "its difference includes") + " the machines'"


def _complete(stage):
    """Whether every planned run of a stage is scored (every seed, for the budget's tables,
    which count no runs)."""
    runs = stage.get("runs")
    if runs:
        return runs["scored"] >= runs["planned"]
    return len(stage["scored_seeds"]) >= len(stage["seeds"])


def _counts_runs(stage):
    """Whether an incomplete stage's progress is told in runs: once every seed has some run
    (before, in seeds)."""
    return bool(stage.get("runs")) and len(stage["scored_seeds"]) >= len(stage["seeds"])


def _seed_count(stage):
    """'10 seeds', or how far a stage still being trained has come: '4 of 10 seeds so far',
    or '10 seeds, 38 of 40 runs so far' once every seed has some run."""
    planned, scored = len(stage["seeds"]), len(stage["scored_seeds"])
    if _complete(stage):
        return f"{planned} seeds"
    if not _counts_runs(stage):
        return f"{scored} of {planned} seeds so far"
    return f"{planned} seeds, {stage['runs']['scored']} of {stage['runs']['planned']} runs so far"


def _scored_so_far(stage):
    """'2 are scored so far', or '38 of its 40 runs are' once every seed has some run."""
    if not _counts_runs(stage):
        return f"{len(stage['scored_seeds'])} are scored so far"
    return f"{stage['runs']['scored']} of its {stage['runs']['planned']} runs are scored so far"


def _detectable(stage):
    found = stage["detectable"]
    if not found or found["effect"] is None:
        return "Detectable effect: not yet estimable (it needs two paired seeds)."
    lead = (f"With {found['seeds']} seeds" if _complete(stage) else
            f"With all {found['seeds']} seeds ({_scored_so_far(stage)})")
    return (f"{lead}, the smallest difference in downstream mIoU from CUT that this stage "
            f"finds with {100 * statistics.POWER:.0f} % power (two-sided paired t-test, "
            f"α = {statistics.ALPHA}) is {found['effect']:.3f} (standard deviation of the "
            f"per-seed differences {found['sd_of_differences']:.3f}); smaller true "
            "differences mostly go unseen.")


def _trained_where(stage):
    """Which machine trained the runs in a stage's table, when more than one did: a mean
    carries its machine's effect on a run ("CUT on each machine"), while the comparisons
    with CUT pair on one machine (docs/design/study.md, "Machines")."""
    by_machine = collections.defaultdict(dict)
    for variant, entry in sorted(stage["variants"].items()):
        for seed, machine in entry["machines"].items():
            by_machine[machine].setdefault(variant, []).append(seed)
    if len(by_machine) < 2:
        return []
    parts = []
    for machine, variants in by_machine.items():
        named = [_named_with_seeds(variant, seeds, stage["variants"][variant]["machines"])
                 for variant, seeds in variants.items()]
        parts.append(f"on {machine}: {', '.join(named)}")
    return ["", "Trained " + "; ".join(parts) + ". Each run carries its machine's effect "
            "(see \"CUT on each machine\"), so the means and the omnibus test set two "
            "machines' runs apart by machine as well as by method; the comparisons with CUT "
            "below pair runs of one machine."]


def _named_with_seeds(variant, seeds, machines):
    """'cut' when one machine trained all of a variant's runs, else the `seeds` one machine
    trained, by the shorter name: 'cut (seed 109)' or 'cut (all but seed 109)'."""
    rest = sorted(set(machines) - set(seeds))
    if not rest:
        return variant
    if len(seeds) > len(rest):
        return f"{variant} (all but {_seeds(rest)})"
    return f"{variant} ({_seeds(sorted(seeds))})"


def _stage_section(title, stage, intro):
    return ["", f"## {title}", "", intro, "", *_table(stage), *_trained_where(stage), "",
            _omnibus(stage), "",
            _detectable(stage), "", "Against CUT, paired by seed, Holm-corrected within each "
            "metric (comparisons planned before the runs, so they stand on their own, "
            "whatever the omnibus test says):", "",
            *(_comparisons(stage) or ["- no comparison yet"])]


def _references(references):
    floor, ceiling = references["floor"]["mean"], references["ceiling"]["mean"]
    untranslated, ideal = references["untranslated"], references["ideal"]
    return ["Reference lines, measured once with the committed scorers:", "",
            f"- downstream mIoU of a segmenter trained on raw A (the floor): {floor:.3f}; on "
            f"B (the ceiling): {ceiling:.3f}",
            f"- untranslated testA: label mIoU {untranslated['label_miou']:.3f}, KID "
            f"{untranslated['kid_seg']:.4f}, PSNR {untranslated['psnr']:.2f} dB",
            f"- the ideal translation (testA_as_B, the same scenes in B's style): label mIoU "
            f"{ideal['label_miou']:.3f}, KID {ideal['kid_seg']:.4f}"]


def _budget(budget):
    lines = ["", "## Budget check: does the screen's verdict survive longer training?", "",
             f"CUT and {plan.CHALLENGER} at the screen's steps (x1) and at longer "
             f"budgets, on the screen seeds ({_seed_count(budget)}); the p values of "
             f"{plan.CHALLENGER} - {plan.REFERENCE} are Holm-corrected over the budgets, one "
             "question asked at each.", "",
             "| steps (x the screen's) | " + " | ".join(plan.CONFIRMED) + " | "
             f"{plan.CHALLENGER} - {plan.REFERENCE} | paired seeds | Holm-adjusted p |",
             "|---:|" + "---:|" * (len(plan.CONFIRMED) + 3)]
    for factor, stage in budget["factors"].items():
        means = [_interval(stage["variants"][v]["metrics"][plan.PRIMARY_METRIC], 3)
                 if plan.PRIMARY_METRIC in stage["variants"].get(v, {}).get("metrics", {})
                 else "–" for v in plan.CONFIRMED]
        versus = stage["vs_reference"].get(plan.PRIMARY_METRIC, {}).get(plan.CHALLENGER)
        cells = (["–"] * 3 if versus is None else
                 [_interval(versus, 3), str(versus["n"]),
                  "–" if versus["holm_p"] is None else f"{versus['holm_p']:.3g}"])
        lines.append(f"| x{factor} | " + " | ".join(means + cells) + " |")
    return lines + _screen_steps_again(budget) + ["", _detectable(budget)]


def _screen_steps_again(budget):
    """Which x1 seeds are the arms' screen runs trained again on their longer runs' machine
    (summary._on_longer_runs_machines)."""
    by_machine = collections.defaultdict(list)
    for seed, machine in budget.get("screen_steps_again", {}).items():
        by_machine[machine].append(seed)
    if not by_machine:
        return []
    parts = [f"{_seeds(sorted(seeds))}: the screen's runs trained again on {machine}, the "
             "machine of the longer runs, so that the budgets compare on one machine (the "
             "screen's own are in its table)" for machine, seeds in by_machine.items()]
    return ["", "x1 " + "; ".join(parts) + "."]


def _machines(machines):
    """What CUT trained again on another machine (plan.SAME_MACHINE) shows of the machine's
    own effect on a run, machine by machine."""
    lines = ["", "## CUT on each machine", "",
             "Another CPU trains another network from the same seed, so a method is compared "
             "with CUT trained on its own machine: where CUT's run of a seed came from "
             "another machine, that machine trains it again (the study's same-machine runs), "
             "and the comparisons above pair with it. What the machine alone moves, CUT's "
             "run again minus its own run of the same seed (paired t, no correction: no "
             "method is tested):", ""]
    for machine, effect in machines.items():
        if not effect["vs_own"]:
            lines.append(f"- on {machine} ({_seeds(effect['trained_again'])}): none pairs "
                         "with a scored run of CUT's own yet")
            continue
        cells = [_difference(BY_KEY[key], effect["vs_own"][key])
                 for key in COMPARED if key in effect["vs_own"]]
        lines.append(f"- on {machine} ({_seeds(effect['seeds'])}; CUT's own on "
                     f"{' and '.join(effect['own_machines'])}): " + "; ".join(cells))
    return lines


def _difference(metric, entry):
    """'label mIoU -0.075 (95 % CI [-0.201, +0.052], p = 0.12)', or '... on one seed'."""
    found = statistics.PairedComparison.from_dict(entry)
    interval, digits = found.interval, metric.digits
    text = f"{metric.label} {interval.mean:+.{digits}f}"
    if interval.half_width is None:
        return text + " on one seed"
    p = "n/a" if found.p_value is None else f"{found.p_value:.2g}"
    return text + f" (95 % CI [{interval.low:+.{digits}f}, {interval.high:+.{digits}f}], p = {p})"


def report(summary, settings, image_dir=""):
    """The Markdown page; `image_dir` is where CHART and SAMPLES are relative to the page."""
    stages = summary["stages"]
    cost = summary["cost"]
    scorer = summary["scorers"]
    lines = ["# Method study: which method keeps the labels and looks real", "",
             "```bash", f"python -m launch.study {settings.command}".rstrip(), "```", "",
             textwrap.fill(headline_paragraph(summary), 95, break_on_hyphens=False), "",
             *_references(summary["references"])]
    if "screen" in stages:
        lines += _stage_section(
            "Stage 1, the screen", stages["screen"],
            f"Every variant on the screen seeds {', '.join(map(str, settings.screen_seeds))}. "
            "Means ± 95 % intervals (Student's t) over seeds; KID leads realism (unbiased at "
            "500 images, where FID is not). Runs that returned their input are counted apart "
            "and left out of the means. Step time is each run's median on a machine that "
            "other work shared at times: `launch.benchmark` compares costs.")
    if "confirm" in stages:
        lines += _stage_section(
            "Stage 2, the confirmation", stages["confirm"],
            "CUT, qsattn_global and the best attention module and label-aware preset of the "
            "screen, on fresh seeds; downstream mIoU was declared the primary metric before "
            "these runs were trained.")
    if "budget" in stages:
        lines += _budget(stages["budget"])
    if summary["machines"]:
        lines += _machines(summary["machines"])
    if summary["collapsed"]:
        lines += ["", "## Runs that returned their input", "",
                  f"Translated testA within {scores.COLLAPSE_DISTANCE} of the input (mean "
                  "|difference| in [0, 1]); left out of the means:", "",
                  "- " + ", ".join(summary["collapsed"])]
    if summary["failed"]:
        lines += ["", "## Runs that failed", "", "Left out of the means (the score file says "
                  "why; delete it to retry the run):", ""]
        lines += [f"- {name}: {reason}" for name, reason in summary["failed"].items()]
    lines += ["", "## How this was made", "",
              f"- {cost['runs']} of {cost['planned']} planned runs scored; "
              f"{cost['training_hours']:.1f} h of training and "
              f"{cost['scoring_hours']:.1f} h of scoring on {'; '.join(cost['machines'])}"
              + _still_to_run(cost),
              f"- scorers {scorer['fingerprint']} on data {scorer['data_hash']} (trained on "
              f"{scorer['machine']}; "
              f"{', '.join(f'{k} {v}' for k, v in scorer['versions'].items())})",
              *(f"- data {data_hash}: the same data set rendered again (on "
                f"{rendering['machine']}), a few B-style pixel values one step apart; the "
                "scorers measure the same reference lines in it (`launch.study "
                f"--add_rendering`); {rendering['runs']} of the runs above "
                + ("was" if rendering["runs"] == 1 else "were") + " scored on it"
                for data_hash, rendering in scorer.get("renderings", {}).items()),
              f"- shared training flags: `{' '.join(settings.train_flags) or '(none)'}`",
              "- the segmenter in the label-aware methods' loss is trained on A inside each "
              "run and never scores; the scorers are trained on B (label mIoU, KID, FID) or "
              "from scratch on each run's translated A (downstream mIoU)",
              "", f"![downstream mIoU per method]({image_dir}{CHART})", "",
              f"![sample grid: testA inputs, each method's first screen seed, real testB]"
              f"({image_dir}{SAMPLES})"]
    return "\n".join(lines) + "\n"


def _still_to_run(cost):
    """'; for the M runs left, about N h on each machine': the machines' paces differ, so one
    estimate would fit none of them (summary.remaining_hours says how each is made)."""
    left = cost["planned"] - cost["runs"]
    if not left or not cost.get("remaining_hours"):
        return ""
    paces = "; ".join(f"{hours:.1f} h on {machine}"
                      for machine, hours in cost["remaining_hours"].items())
    return (f"; for the {left} planned runs left, about {paces} "
            "(from each variant's median cost, at each machine's pace)")


def headline_paragraph(summary):
    """What the study can and cannot tell, in one paragraph."""
    screen = summary["stages"].get("screen")
    confirm = summary["stages"].get("confirm")
    if screen is None:
        return "No run is scored yet."
    cost = summary["cost"]
    parts = [f"{cost['runs']} of {cost['planned']} planned runs scored"
             + (", in progress." if cost["runs"] < cost["planned"] else ".")]
    parts += _reference_gap(screen, confirm)
    test = screen["omnibus"]
    if test:
        parts.append(("The screen " if _complete(screen) else
                      f"So far (the {len(test['methods'])} methods with every seed scored), the "
                      "screen ") + ("separates" if test["differ"] else "does not separate")
                     + f" the methods as a group (Friedman p = {test['friedman_p']:.2g}).")
    for stage, name in ((screen, "screen"), (confirm, "confirmation")):
        tested = stage["vs_reference"].get(plan.PRIMARY_METRIC, {}) if stage else {}
        if not any(c["p"] is not None for c in tested.values()):
            continue
        found = stage["detectable"]
        verdicts = {v: _verdict(c) for v, c in tested.items()}
        differ = [v for v, verdict in verdicts.items() if verdict]
        better = [v for v in differ if verdicts[v] > 0]
        worse = [v for v in differ if verdicts[v] < 0]
        mixed = _machine_caveat(tested, differ)
        parts.append(
            f"In the {name} ({_seed_count(stage)}), "
            + (f"{_and(better)} beat{'s' if len(better) == 1 else ''} CUT on downstream "
               "mIoU" if better else "no method beats CUT on downstream mIoU")
            + (f", {_and(worse)} {'is' if len(worse) == 1 else 'are'} worse" if worse
               else "")
            + " after Holm's correction"
            + ("" if _complete(stage) or not differ else
               " (an interim look: the verdict is the complete stage's)")
            + ((f"; differences below {found['effect']:.3f} would mostly go unseen"
                + ("" if _complete(stage) else f" with all {len(stage['seeds'])} seeds"))
               if found and found["effect"] else "") + "." + mixed)
    parts += _budget_verdict(summary["stages"].get("budget", {}))
    if summary["collapsed"]:
        count = len(summary["collapsed"])
        parts.append(f"{count} runs returned their input and are reported apart."
                     if count > 1 else "1 run returned its input and is reported apart.")
    return " ".join(parts)


def _machine_caveat(tested, differ):
    """' ...' on the machines of the comparisons' pairs: the verdicts that do not hold
    without the seeds paired across machines, those that differ when paired with CUT's own
    runs rather than CUT trained again on the method's machine, and how many methods have no
    CUT run on their machine yet ('' if every pair shares its machine and no verdict
    depends on it)."""
    fragile = [v for v in differ if tested[v].get("mixed_seeds") and not (
        tested[v]["one_machine"] and _differs(tested[v]["one_machine"]["holm_p"]))]
    apart = [v for v, c in tested.items() if c.get("mixed_seeds") and c["one_machine"] is None]
    notes = []
    if fragile:
        seeds = sorted({s for v in fragile for s in tested[v]["mixed_seeds"]})
        notes.append(
            f"Without {_seeds(seeds)}, whose runs were trained on two machines, "
            f"{_and(fragile)} {'is' if len(fragile) == 1 else 'are'} not distinguishable "
            "from CUT (" + "; ".join(
                f"{v}: " + (_mean_and_p(tested[v]["one_machine"]) if tested[v]["one_machine"]
                            else "no seed left") for v in fragile) + ")")
    changed = [v for v, c in tested.items() if _pairing_decides(c)]
    if changed:
        seeds = sorted({s for v in changed for s in tested[v]["again_seeds"]})
        notes.append(
            f"Paired with CUT's own run{'s' if len(seeds) > 1 else ''} of {_seeds(seeds)} "
            "instead, from another machine (as first reported), "
            + "; ".join(_verdict_words(v, tested[v]["own_runs"]) for v in changed))
    if apart:
        many = len(apart) > 1
        notes.append(f"{len(apart)} method{'s have' if many else ' has'} no CUT run on "
                     f"{'their' if many else 'its'} machine yet, so "
                     f"{_machines_included(many)}")
    return "".join(f" {note}." for note in notes)


def _and(names):
    """'a', 'a and b', 'a, b and c'."""
    return " and ".join(filter(None, (", ".join(names[:-1]), names[-1])))


def _reference_gap(*stages):
    """How far CUT's translations go from the floor to the ceiling, from the stage that has
    the most CUT seeds (the confirmation's ten, once trained): [] before CUT is scored."""
    gaps = [statistics.Interval.from_dict(stage["variants"][plan.REFERENCE]["metrics"]
                                          [GAP_CLOSED])
            for stage in stages if stage and GAP_CLOSED in stage["variants"].get(
                plan.REFERENCE, {}).get("metrics", {})]
    if not gaps:
        return []
    interval = max(gaps, key=lambda gap: gap.n)
    spread = ("" if interval.half_width is None else
              f" (95 % interval {100 * interval.low:.0f} to {100 * interval.high:.0f} %, "
              f"{interval.n} seeds)")
    return [f"Training a segmenter on CUT's translations of the simulator frames goes "
            f"{100 * interval.mean:.0f} %{spread} of the way from training it on the raw "
            "frames to training it on real labelled ones."]


def _budget_verdict(budget):
    """Whether qsattn_global's difference from CUT at the screen's budget survives longer
    training (Holm-corrected over the budgets): [] until a longer budget has a paired
    interval."""
    found = {}
    for factor, stage in budget.get("factors", {}).items():
        entry = stage["vs_reference"].get(plan.PRIMARY_METRIC, {}).get(plan.CHALLENGER)
        if entry and entry["ci95"] is not None:
            found[int(factor)] = entry
    if not any(factor > 1 for factor in found):
        return []
    signs = {_verdict(entry) for entry in found.values()}
    verdict = ("at no budget are the two distinguishable" if signs == {0} else
               "the order holds at every budget" if len(signs) == 1 else
               "the verdict depends on the budget")
    intervals = {factor: statistics.Interval.from_dict(entry)
                 for factor, entry in sorted(found.items())}
    differences = ", ".join(f"{i.mean:+.3f} [{i.low:+.3f}, {i.high:+.3f}] at {factor}x"
                            for factor, i in intervals.items())
    return [f"Trained longer (the budget check, {_seed_count(budget)}), {plan.CHALLENGER} "
            f"minus CUT in downstream mIoU is {differences} the screen's steps: {verdict} "
            "after Holm's correction over the budgets"
            + ("" if _complete(budget) else " (an interim look)") + "."]


def headline(summary, report_link):
    """The README's block: the paragraph and a link to the page."""
    return (textwrap.fill(headline_paragraph(summary) + f" Details: [{report_link}]"
                          f"({report_link}).", 95, break_on_hyphens=False) + "\n")


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
