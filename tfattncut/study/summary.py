"""The study's numbers: score records -> per stage, per variant means with 95 % intervals,
the omnibus test, Holm-corrected comparisons with CUT and the detectable effect; collapsed
and failed runs apart (docs/design/study.md, "Statistics"). Pure bookkeeping, so a report
can be rebuilt on any machine from STUDY_DIR alone.
"""
import collections
import dataclasses

import numpy as np

from tfattncut.study import plan, scores, statistics


@dataclasses.dataclass(frozen=True)
class Metric:
    key: str
    label: str
    higher_is_better: bool
    digits: int


# A per-run measure derived from downstream mIoU and the reference lines (`_value`).
GAP_CLOSED = "gap_closed"
# The per-run scores in report order: the downstream use first (and how much of the way from
# raw A to real labelled B it goes), then label preservation, then realism led by KID
# (unbiased at 500 images, where FID is not), the paired ground truth and the cost.
METRICS = (Metric("downstream_miou", "downstream mIoU", True, 3),
           Metric(GAP_CLOSED, "share of the floor→ceiling gap", True, 2),
           Metric("label_miou", "label mIoU", True, 3),
           Metric("kid_seg", "KID (segmenter)", False, 4),
           Metric("fid_seg", "FID (segmenter)", False, 2),
           Metric("psnr", "PSNR vs testA_as_B (dB)", True, 2),
           Metric("ssim", "SSIM vs testA_as_B", True, 3),
           Metric("step_time_s", "step time (s)", False, 2))
# The metrics compared with CUT, each a family of its own for Holm's correction.
COMPARED = ("downstream_miou", "label_miou", "kid_seg")
BY_KEY = {metric.key: metric for metric in METRICS}


def _value(record, key, references):
    """A record's score for `key`. GAP_CLOSED places its downstream mIoU between the floor
    (a segmenter trained on raw A: 0) and the ceiling (trained on B: 1), the scale on which a
    user reads how much translating buys over not translating."""
    if key != GAP_CLOSED:
        return record.get(key)
    downstream = record.get(plan.PRIMARY_METRIC)
    if downstream is None:
        return None
    floor, ceiling = references["floor"]["mean"], references["ceiling"]["mean"]
    return (downstream - floor) / (ceiling - floor)


def _variant_entry(records, references):
    """Seeds, collapsed and failed seeds, and per metric the values and their interval of
    one variant's records (collapsed and failed runs left out of the values)."""
    entry = {"seeds": sorted(r["seed"] for r in records), "collapsed": [], "failed": {},
             "metrics": {}, "machines": {}}
    kept = []
    for record in records:
        if record.get("failed"):
            entry["failed"][record["seed"]] = record["failed"]
        elif scores.collapsed(record):
            entry["collapsed"].append(record["seed"])
        else:
            kept.append(record)
            entry["machines"][record["seed"]] = record["machine"]
    for metric in METRICS:
        values = {r["seed"]: _value(r, metric.key, references) for r in kept}
        values = {seed: value for seed, value in values.items() if value is not None}
        if values:
            entry["metrics"][metric.key] = {
                "values": values, **statistics.mean_interval(values.values()).to_dict()}
    return entry


def _reference_values(key, entry, reference, same_machine):
    """(CUT's `key` values paired with the seeds of a variant's `entry`, the seeds paired
    across machines, the seeds paired with CUT trained again): for each seed CUT's run on the
    machine that trained the variant's run, its own run or, from `same_machine` ({machine:
    entry of its plan.SAME_MACHINE runs}), one trained again there; else CUT's own run, from
    another machine."""
    own = reference["metrics"].get(key, {}).get("values", {})
    values, mixed, again = {}, [], []
    for seed in entry["metrics"][key]["values"]:
        machine = entry["machines"][seed]
        trained_again = same_machine.get(machine, {}).get("metrics", {}).get(key, {}).get(
            "values", {})
        if seed in own and reference["machines"][seed] == machine:
            values[seed] = own[seed]
        elif seed in trained_again:
            values[seed] = trained_again[seed]
            again.append(seed)
        elif seed in own:
            values[seed] = own[seed]
            mixed.append(seed)
    return values, sorted(mixed), sorted(again)


def _holm_family(comparisons):
    """{variant: PairedComparison dict with holm_p} of {variant: PairedComparison or None},
    Holm-corrected over those that are not None."""
    family = {v: c for v, c in comparisons.items() if c is not None}
    adjusted = statistics.holm([c.p_value for c in family.values()])
    return {v: dataclasses.replace(c, holm_p=p).to_dict()
            for (v, c), p in zip(family.items(), adjusted)}


def _compare(variants, same_machine):
    """{metric: {variant: PairedComparison dict}} against CUT on each run's machine
    (`_reference_values`), Holm-corrected per metric: another CPU trains another network from
    the same seed, so a pair of two machines differs by machine as well as by method
    (docs/design/study.md, "Machines"). A comparison with seeds still paired across machines
    (`mixed_seeds`) also has the comparison without them (`one_machine`: None when no seed
    is left); one of downstream mIoU with seeds paired with CUT trained again (`again_seeds`)
    also has the comparison with CUT's own runs instead (`own_runs`), as a stage was reported
    before CUT was trained again; each Holm-corrected over the family redone that way."""
    reference = variants.get(plan.REFERENCE)
    if reference is None:
        return {}
    compared = {}
    for key in COMPARED:
        if key not in reference["metrics"]:
            continue
        pairs = {variant: (entry["metrics"][key]["values"],
                           *_reference_values(key, entry, reference, same_machine))
                 for variant, entry in variants.items()
                 if variant != plan.REFERENCE and key in entry["metrics"]}
        compared[key] = _holm_family({v: statistics.paired_comparison(values, paired)
                                      for v, (values, paired, _, _) in pairs.items()})
        one_machine = _holm_family({
            v: statistics.paired_comparison(
                {s: x for s, x in values.items() if s not in mixed}, paired)
            for v, (values, paired, mixed, _) in pairs.items() if v in compared[key]})
        own_runs = _holm_family({
            v: statistics.paired_comparison(values, reference["metrics"][key]["values"])
            for v, (values, _, _, _) in pairs.items() if v in compared[key]})
        for variant, entry in compared[key].items():
            _, _, entry["mixed_seeds"], again = pairs[variant]
            if entry["mixed_seeds"]:
                entry["one_machine"] = one_machine.get(variant)
            if key == plan.PRIMARY_METRIC and again:
                entry["again_seeds"], entry["own_runs"] = again, own_runs.get(variant)
    return compared


def _differences(variants, same_machine):
    """{variant: its per-seed downstream mIoU differences with CUT on its machine} over the
    seeds both have, for the variants that share two seeds with CUT."""
    reference = variants.get(plan.REFERENCE)
    if reference is None or plan.PRIMARY_METRIC not in reference["metrics"]:
        return {}
    differences = {}
    for variant, entry in variants.items():
        values = entry["metrics"].get(plan.PRIMARY_METRIC, {}).get("values", {})
        if variant == plan.REFERENCE or not values:
            continue
        paired, _, _ = _reference_values(plan.PRIMARY_METRIC, entry, reference, same_machine)
        shared = sorted(set(values) & set(paired))
        if len(shared) >= 2:
            differences[variant] = [values[s] - paired[s] for s in shared]
    return differences


def _detectable(differences, seeds):
    """The smallest downstream mIoU difference with CUT that `seeds` seeds detect with 80 %
    power, from the pooled spread of the per-seed `differences` seen so far."""
    sd = statistics.pooled_sd(differences)
    if sd is None:
        return None
    return {"sd_of_differences": sd, "seeds": seeds,
            "effect": statistics.detectable_difference(sd, seeds)}


def _by_machine(records, references):
    """{machine: _variant_entry of CUT's plan.SAME_MACHINE `records` trained on it}."""
    grouped = collections.defaultdict(list)
    for record in records:
        grouped[record["machine"]].append(record)
    return {machine: _variant_entry(rs, references) for machine, rs in sorted(grouped.items())}


def _stage(records, references, seeds, same_machine_records=()):
    """A stage's numbers from its `records`, CUT's plan.SAME_MACHINE runs of its seeds
    (`same_machine_records`) standing in for CUT's own on their machines."""
    by_variant = collections.defaultdict(list)
    for record in records:
        by_variant[record["variant"]].append(record)
    variants = {v: _variant_entry(rs, references) for v, rs in sorted(by_variant.items())}
    same_machine = _by_machine([r for r in same_machine_records if r["seed"] in seeds],
                               references)
    complete = {v: e["metrics"][plan.PRIMARY_METRIC]["values"] for v, e in variants.items()
                if plan.PRIMARY_METRIC in e["metrics"]
                and set(seeds) <= set(e["metrics"][plan.PRIMARY_METRIC]["values"])}
    omnibus = statistics.omnibus(complete)
    return {"variants": variants, "seeds": list(seeds),
            "scored_seeds": sorted({r["seed"] for r in records} & set(seeds)),
            "vs_reference": _compare(variants, same_machine),
            "omnibus": omnibus.to_dict() if omnibus else None,
            "omnibus_left_out": sorted(set(variants) - set(complete)),
            "detectable": _detectable(_differences(variants, same_machine), len(seeds)),
            "same_machine": same_machine}


def _budget(records, screen, references, settings, again):
    """The budget check from its longer runs (`records`) and the `screen`'s runs of
    plan.CONFIRMED (factor 1, `_on_longer_runs_machines`): a stage per steps factor, the
    challenger's comparisons with CUT Holm-corrected over the factors (one question, does
    the screen's verdict survive longer training, asked at each budget), the runs scored of
    those planned, and the detectable effect from the differences of every factor. `again`:
    the plan.SAME_MACHINE records."""
    screen, trained_again = _on_longer_runs_machines(screen, records, again)
    records = records + screen
    factors = {str(factor): _stage(
        [r for r in records if r["steps_factor"] == factor], references, settings.screen_seeds,
        [r for r in again if r["steps_factor"] == factor and r["variant"] == plan.REFERENCE])
        for factor in sorted({r["steps_factor"] for r in records})}
    for key in COMPARED:
        family = [stage["vs_reference"][key][plan.CHALLENGER] for stage in factors.values()
                  if plan.CHALLENGER in stage["vs_reference"].get(key, {})]
        for entry, p in zip(family, statistics.holm([entry["p"] for entry in family])):
            entry["holm_p"] = p
    differences = {factor: _differences(stage["variants"], stage["same_machine"]).get(
        plan.CHALLENGER, []) for factor, stage in factors.items()}
    arms = plan.always_confirmed(settings)
    return {"factors": factors, "seeds": list(settings.screen_seeds),
            "scored_seeds": sorted({r["seed"] for r in records} & set(settings.screen_seeds)),
            "runs": {"scored": len(records), "planned": len(arms) * len(settings.screen_seeds)
                     * (1 + len(settings.budget_factors))},
            "detectable": _detectable(differences, len(settings.screen_seeds)),
            "screen_steps_again": trained_again}


def _on_longer_runs_machines(screen, longer, again):
    """(The `screen` runs with each seed's swapped for the arms' plan.SAME_MACHINE runs at the
    screen's steps on the machine of that seed's first `longer` run, where every arm has one
    there; {seed: machine} of the seeds swapped): a budget's difference from the screen's is
    then not also the difference between two machines (docs/design/study.md, "Machines")."""
    machine_of = {}
    for record in sorted(longer, key=lambda r: r["steps_factor"]):
        machine_of.setdefault(record["seed"], record["machine"])
    on_machine = {(r["variant"], r["seed"], r["machine"]): r
                  for r in [*screen, *again] if r["steps_factor"] == 1}
    swapped, trained_again = [], {}
    for seed in sorted({r["seed"] for r in screen}):
        own = [r for r in screen if r["seed"] == seed]
        there = [on_machine.get((r["variant"], seed, machine_of.get(seed))) for r in own]
        if seed in machine_of and all(there) and there != own:
            swapped += there
            trained_again[seed] = machine_of[seed]
        else:
            swapped += own
    return swapped, trained_again


def _machine_effect(records, again, references):
    """{machine: the seeds of its plan.SAME_MACHINE runs of CUT at the screen's length and,
    per metric compared, their paired differences from CUT's own runs of the same seeds
    (trained on `own_machines`), failed and collapsed runs left out}: how much the machine
    alone moves a score. It tests no method, so no correction."""
    effect = {}
    for machine, entry in _by_machine(again, references).items():
        own = [records[name] for name in (plan.run_name(plan.REFERENCE, seed)
                                          for seed in entry["seeds"]) if name in records]
        own_entry = _variant_entry(own, references)
        compared = {}
        for key in COMPARED:
            comparison = statistics.paired_comparison(
                entry["metrics"].get(key, {}).get("values", {}),
                own_entry["metrics"].get(key, {}).get("values", {}))
            if comparison is not None:
                compared[key] = comparison.to_dict()
        paired = {seed for comparison in compared.values() for seed in comparison["seeds"]}
        effect[machine] = {"trained_again": entry["seeds"], "seeds": sorted(paired),
                           "own_machines": sorted({own_entry["machines"][s] for s in paired}),
                           "vs_own": compared}
    return effect


def summarise(records, scorers, settings):
    """The report's numbers (module docstring) of {run name: record}."""
    references = scorers.references
    by_stage = collections.defaultdict(list)
    for record in records.values():
        by_stage[record["stage"]].append(record)
    summary = {"scorers": {key: scorers.record[key] for key in
                           ("fingerprint", "data_hash", "versions", "machine")},
               "references": references, "stages": {}}
    summary["scorers"]["renderings"] = {
        data_hash: {"machine": rendering["machine"],
                    "runs": sum(r["data_hash"] == data_hash for r in records.values())}
        for data_hash, rendering in scorers.record.get("renderings", {}).items()}
    again = by_stage[plan.SAME_MACHINE]
    at_screen_length = [r for r in again
                        if r["steps_factor"] == 1 and r["variant"] == plan.REFERENCE]
    if by_stage["screen"]:
        summary["stages"]["screen"] = _stage(by_stage["screen"], references,
                                             settings.screen_seeds, at_screen_length)
    if by_stage["confirm"]:
        summary["stages"]["confirm"] = _stage(by_stage["confirm"], references,
                                              settings.confirm_seeds, at_screen_length)
    if by_stage["budget"]:
        summary["stages"]["budget"] = _budget(
            by_stage["budget"], [r for r in by_stage["screen"] if r["variant"] in plan.CONFIRMED],
            references, settings, again)
    summary["machines"] = _machine_effect(records, at_screen_length, references)
    summary["collapsed"] = sorted(name for name, r in records.items()
                                  if not r.get("failed") and scores.collapsed(r))
    summary["failed"] = {name: r["failed"] for name, r in sorted(records.items())
                         if r.get("failed")}
    timed = [r for r in records.values() if r.get("training_minutes") is not None]
    planned = plan.planned_runs(settings, records)
    unchosen = plan.unchosen_confirm_runs(settings, records)
    for name in ("screen", "confirm"):
        if name in summary["stages"]:
            scored = {n for n, r in records.items() if r["stage"] == name}
            summary["stages"][name]["runs"] = {
                "scored": len(scored),
                "planned": len({run.name for run in planned if run.stage == name} | scored)
                + (unchosen if name == "confirm" else 0)}
    left = [run for run in planned if run.name not in records]
    summary["cost"] = {
        "runs": len(records),
        "planned": len({run.name for run in planned} | set(records)) + unchosen,
        "training_hours": sum(r["training_minutes"] for r in timed) / 60,
        "scoring_hours": sum(r.get("scoring_minutes", 0.0) for r in timed) / 60,
        "remaining_hours": {machine: remaining_hours(left, timed, machine, unchosen)
                            for machine in sorted({r["machine"] for r in timed})},
        "machines": sorted({r["machine"] for r in records.values()})}
    return summary


def remaining_hours(runs, timed, machine, unnamed_runs=0):
    """What the planned `runs` not yet scored, and `unnamed_runs` more of the screen's length
    (the confirmation before its arms are chosen), will take on `machine`, from the `timed`
    records. A variant trains at its median minutes per screen length on that machine; one it
    never trained there, at its median elsewhere times the machine's pace on the variants both
    trained; one with no record, at the machine's median. Scoring costs the machine's median
    per run. Medians, because a run that shared the machine with other work can take ten
    times as long; per variant, because the variants' costs differ threefold. `machine` has
    timed at least one run."""
    here = [r for r in timed if r["machine"] == machine]

    def per_length(record):
        return record["training_minutes"] / record.get("steps_factor", 1)

    def median_per_length(records):
        """variant -> median training minutes per screen length of its `records`."""
        minutes = collections.defaultdict(list)
        for r in records:
            minutes[r["variant"]].append(per_length(r))
        return {variant: np.median(m) for variant, m in minutes.items()}

    own = median_per_length(here)
    others = median_per_length([r for r in timed if r["machine"] != machine])
    shared = [own[v] / others[v] for v in own if v in others]
    pace = np.median(shared) if shared else 1.0
    usual = np.median([per_length(r) for r in here])

    def training(variant):
        if variant in own:
            return own[variant]
        return others[variant] * pace if variant in others else usual

    scoring = np.median([r.get("scoring_minutes", 0.0) for r in here])
    return float(sum(training(run.variant) * run.steps_factor + scoring for run in runs)
                 + unnamed_runs * (usual + scoring)) / 60
