"""The ``[stability]`` table of a study file: the runs of the generalization-stability study.

``expand_stability(table)`` turns the table (``benchmarks/studies/stability.toml``) into run specs
(``core.spec.StabilitySpec``, run by ``benchmarks.stability``): permanent runs over targets x
intervals, the noise variants, and the no-pruning baselines, for every (dataset, arch, seed).
"""

from __future__ import annotations

import itertools

from benchmarks.archs import ARCHS
from benchmarks.datasets import DATASETS
from core.config import make_config
from core.spec import STABILITY_TARGETS, STABILITY_VARIANTS, StabilitySpec, TrainConfig
from pruners import PRUNERS

DEFAULT_SCORER, DEFAULT_SCORER_CONFIG = "l1_filter", {"p": 2}  # the filter L2 norm of the paper

STABILITY_KEYS = {
    "datasets": "list of dataset names",
    "archs": "list of registered archs that declare unit groups",
    "seeds": "list of non-negative integers, or a count n (seeds 0..n-1)",
    "targets": f"list, subset of {list(STABILITY_TARGETS[:3])} (the baseline is added by 'baseline')",
    "every": "list of event intervals in epochs (the rates of the sweep)",
    "variants": f"list, subset of {list(STABILITY_VARIANTS[:3])}",
    "noise": "table {variant = [targets]}: noise variants run only for these targets",
    "noise_every": "list: the event intervals the noise variants run at",
    "noise_batches": "int >= 1: optimizer steps a noise variant lasts",
    "first_event": "int >= 1: epoch after which the first event happens",
    "last_event": "int: epoch after which the last event happens (before the last epoch)",
    "final_fraction": "number in (0, 1): fraction of units of each pruned layer removed by the end",
    "layers": "int >= 1: how many of the last unit groups are pruned",
    "scorer": "a registered structured pruner whose unit scores rank the units",
    "scorer_config": "table: the scorer's hyperparameters",
    "baseline": "bool: add one no-pruning run per (dataset, arch, seed); default true",
    "train": "table: the training recipe (TrainConfig keys)",
}


def seeds_of(value, bad) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return list(range(value))
    if (
        isinstance(value, list)
        and value
        and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value)
    ):
        return list(dict.fromkeys(value))
    raise bad("seeds", f"{value!r} is neither a positive count nor a list of non-negative integers")


def expand_stability(table: dict) -> list[StabilitySpec]:
    """The runs of a ``[stability]`` table: permanent runs over targets x intervals, noise runs
    for the targets and intervals ``noise`` / ``noise_every`` name, plus baselines; every
    combination for every (dataset, arch, seed). A bad key or value raises ``ValueError``
    naming the key and what would be valid."""

    def bad(key: str, message: str) -> ValueError:
        return ValueError(f"[stability] key {key!r}: {message}; valid: {STABILITY_KEYS.get(key, '')}")

    for key in table:
        if key not in STABILITY_KEYS:
            raise ValueError(f"[stability] unknown key {key!r}; valid keys: {', '.join(STABILITY_KEYS)}")
    for key in ("datasets", "archs", "seeds", "targets", "every"):
        if key not in table:
            raise bad(key, "is missing")

    def names(key: str, valid) -> list[str]:
        values = table[key]
        if not isinstance(values, list) or not values:
            raise bad(key, "must be a non-empty list")
        for v in values:
            if v not in valid:
                raise bad(key, f"{v!r} is not one of {list(valid)}")
        return list(dict.fromkeys(values))

    def integers(key: str, low: int) -> list[int]:
        values = table[key]
        if (
            not isinstance(values, list)
            or not values
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= low for v in values)
        ):
            raise bad(key, f"{values!r} is not a non-empty list of integers >= {low}")
        return list(dict.fromkeys(values))

    datasets = names("datasets", DATASETS.names("*"))
    archs = names("archs", ARCHS.names())
    targets = names("targets", STABILITY_TARGETS[:3])
    seeds = seeds_of(table["seeds"], bad)
    every = integers("every", 1)
    noise_every = integers("noise_every", 1) if "noise_every" in table else every
    noise = table.get("noise", {})
    if not isinstance(noise, dict) or any(v not in ("noise_zero", "noise_gauss") for v in noise):
        raise bad("noise", f"{noise!r} is not a table of noise_zero / noise_gauss -> [targets]")
    for variant, ts in noise.items():
        if not isinstance(ts, list) or any(t not in STABILITY_TARGETS[:3] for t in ts):
            raise bad("noise", f"{variant} = {ts!r}: not a list of targets")
    scorer = table.get("scorer", DEFAULT_SCORER)
    if scorer not in PRUNERS or PRUNERS.get(scorer).kind != "structured":
        structured = [p for p in PRUNERS.names() if PRUNERS.get(p).kind == "structured"]
        raise bad("scorer", f"{scorer!r} is not a registered structured pruner ({structured})")
    try:
        default = DEFAULT_SCORER_CONFIG if scorer == DEFAULT_SCORER else {}
        scorer_config = make_config(
            PRUNERS.get(scorer).Config, table.get("scorer_config", default), "scorer_config"
        )
        recipe = make_config(TrainConfig, table.get("train", {}), "train")
    except ValueError as exc:
        key = "scorer_config" if str(exc).startswith("scorer_config") else "train"
        raise bad(key, str(exc)) from None
    from dataclasses import asdict

    common = {k: table[k] for k in ("first_event", "last_event", "final_fraction", "layers") if k in table}
    baseline = table.get("baseline", True)
    if not isinstance(baseline, bool):
        raise bad("baseline", f"{baseline!r} is not a bool")
    noise_batches = table.get("noise_batches", 50)
    specs: list[StabilitySpec] = []
    try:
        for ds, arch, seed in itertools.product(datasets, archs, seeds):
            kw = dict(common, scorer=scorer, scorer_config=asdict(scorer_config), train=recipe)
            if baseline:
                specs.append(StabilitySpec(arch, ds, seed, "none", "none", **kw))
            for tg, ev in itertools.product(targets, every):
                specs.append(StabilitySpec(arch, ds, seed, tg, "permanent", every=ev, **kw))
            for variant, ts in noise.items():
                for tg, ev in itertools.product(ts, noise_every):
                    specs.append(
                        StabilitySpec(
                            arch, ds, seed, tg, variant, every=ev, noise_batches=noise_batches, **kw
                        )
                    )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"[stability] {exc}") from None
    return specs
