"""Synthetic study frames with planted effects, in the stored schema, for the claims tests.

Each builder returns ``(cells, metrics)`` frames shaped like ``core.schema`` tables (only the
columns the analyses read), so ``analysis.load.study_frames`` turns them into a ``StudyData``
exactly as a store read would; ``write_store`` writes them (with a manifest) to disk.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from core.spec import canonical_json

CELL = {
    "parent_id": None,
    "cell_type": "prune",
    "pruner_kind": "unstructured",
    "pruner_timing": "after_training",
    "retrain": "finetune",
    "control": "none",
    "schedule": None,
    "score": None,
    "variant": None,
    "spec_json": "{}",
    "epochs_dense": 30.0,
    "epochs_prune": 0.0,
    "epochs_retrain": 8.0,
    "train_flops": 1e9,
}


def m(cid, phase, eval_set, metric, value, cls=None, kind="clean", severity=0, step=None) -> dict:
    return {
        "cell_id": cid,
        "phase": phase,
        "eval_set": eval_set,
        "kind": kind,
        "severity": severity,
        "metric": metric,
        "class": cls,
        "step": step,
        "value": float(value),
    }


def _model_rows(
    cid: str,
    phase: str,
    recall: np.ndarray,
    preds: np.ndarray | None = None,
    weights: np.ndarray | None = None,
) -> list[dict]:
    """A model's test rows; ``weights`` (class frequencies) make the top-1 accuracy a weighted mean
    of the recalls (a test split that is not class-balanced)."""
    acc = float(np.average(recall, weights=weights)) if weights is not None else float(recall.mean())
    rows = [m(cid, phase, "test", "accuracy", acc)]
    rows += [m(cid, phase, "test", "recall", r, cls=k) for k, r in enumerate(recall)]
    if preds is not None:
        rows += [m(cid, phase, "test", "prediction", p, step=i) for i, p in enumerate(preds)]
    return rows


def spec_json(epochs: int = 8) -> str:
    return json.dumps(
        {"retrain": "finetune", "retrain_config": {"epochs": epochs, "patience": 3}, "train": {"epochs": 30}}
    )


def kept_row(cid: str, epoch: float) -> dict:
    return {**m(cid, "retrained", "model", "kept_epoch", epoch, kind="model")}


def intensification(
    rng: np.random.Generator,
    alpha: dict[float, float],
    *,
    seeds: int = 20,
    pruners=("global_magnitude",),
    arch: str = "mlp_256x2",
    dataset: str = "mnist1d",
    classes: int = 10,
    noise: float = 0.02,
    drop: float = 0.03,
    pruner_alpha: dict[str, float] | None = None,
    pruner_drop: dict[str, float] | None = None,
    class_shift: dict[int, float] | None = None,
    predictions: int = 0,
    control: float | None = None,
    parent_sd: float = 0.0,
    recall_sd: float = 0.03,
    last_share: float = 0.0,
    epochs: int = 8,
    weights: np.ndarray | None = None,
    absolute: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Dense models with class recalls around a shared class difficulty (parent-to-parent spread
    ``recall_sd``); each pruned model's normalised recall balance is ``(alpha[s] + u_m) * Bbar + e``
    (``e ~ N(0, noise)``, centred; ``u_m ~ N(0, parent_sd)`` a parent effect shared by all of a
    parent's cells), so its measured ``alpha_t`` is the planted value plus noise. ``control``: the
    t = 1 cells' planted alpha (cells of ``global_magnitude`` at sparsity 0, no accuracy drop).
    ``pruner_alpha`` / ``pruner_drop`` add per-pruner offsets to alpha / the accuracy drop;
    ``class_shift`` moves class recalls of every pruned model (Hooker). Every cell stores its kept
    fine-tuning epoch: the last (``epochs``) for a share ``last_share`` of cells, else an earlier one.
    ``absolute``: plant the un-normalised slope instead, ``B_t = (alpha[s] + u_m) B + e`` (so the
    planted value is ``beta_t``, and ``alpha_t = beta_t A / A_t``)."""
    cells, rows = [], []
    base = rng.uniform(0.55, 0.9, classes)
    plan = [(p, s, a) for p in pruners for s, a in alpha.items()]
    if control is not None:
        plan.append(("global_magnitude", 0.0, control))
    for seed in range(seeds):
        r0 = np.clip(base + rng.normal(0, recall_sd, classes), 0.05, 1)
        a0 = r0.mean()
        b0 = (r0 - a0) / a0
        u = rng.normal(0, parent_sd) if parent_sd else 0.0
        labels = rng.integers(0, classes, predictions) if predictions else None
        for pruner, sparsity, a_true in plan:
            a_true = a_true + (pruner_alpha or {}).get(pruner, 0.0) * (sparsity > 0) + u
            e = rng.normal(0, noise, classes)
            a1 = a0 - (drop + (pruner_drop or {}).get(pruner, 0.0)) * (sparsity > 0)
            if absolute:
                r1 = np.clip(a1 + a_true * (r0 - a0) + a0 * (e - e.mean()), 0, 1)
            else:
                r1 = np.clip(a1 * (1 + a_true * b0 + e - e.mean()), 0, 1)
            for k, delta in (class_shift or {}).items():
                r1[k] = np.clip(r1[k] + delta * (sparsity > 0), 0, 1)
            cid = f"c{arch}{dataset}{pruner}{sparsity}{seed}"
            cells.append(
                {
                    **CELL,
                    "cell_id": cid,
                    "parent_id": f"p{arch}{dataset}{seed}",
                    "arch": arch,
                    "dataset": dataset,
                    "pruner": pruner,
                    "sparsity": sparsity,
                    "seed": seed,
                    "spec_json": spec_json(epochs),
                }
            )
            pruned_pred = None
            if predictions:
                pruned_pred = labels.copy()
                flip = rng.random(predictions) < 0.05 + 0.2 * sparsity
                pruned_pred[flip] = rng.integers(0, classes, int(flip.sum()))
            rows += _model_rows(cid, "dense", r0, labels, weights) + _model_rows(
                cid, "retrained", r1, pruned_pred, weights
            )
            rows.append(kept_row(cid, epochs if rng.random() < last_share else int(rng.integers(1, epochs))))
    return pd.DataFrame(cells), pd.DataFrame(rows)


def stability(
    rng: np.random.Generator,
    r: float,
    *,
    seeds: int = 10,
    targets=("prune_s", "prune_l", "prune_r"),
    every=(1, 4),
    noise_gain: float | dict = 0.0,
    fit: float = 0.995,
    prune_gain: float = 0.005,
    seed_effect: float = 0.0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stability runs whose stability S and best test accuracy G have correlation ``r`` within a
    seed across the permanent runs (standard normal pairs mapped to S around 95 and G around the
    seed's baseline + ``prune_gain``). ``seed_effect = k``: a seed's shared shift ``u ~ N(0, 1)``
    in units of the within-seed spread, added to all its runs (seeds shared across
    configurations, the baseline included): ``|k| u`` to S and ``k u`` to G, so a negative ``k``
    makes the seeds' means correlate negatively. Noise runs of Prune_L (at every = 1) and
    baselines with G raised by ``noise_gain`` (one number, or one per variant) over the baseline."""
    cells, rows = [], []
    gains = (
        noise_gain if isinstance(noise_gain, dict) else {"noise_zero": noise_gain, "noise_gauss": noise_gain}
    )

    def run(cid, target, variant, ev, seed, s, g):
        spec = {"target": target, "variant": variant, "every": ev}
        cells.append(
            {
                **CELL,
                "cell_id": cid,
                "cell_type": "stability",
                "arch": "cnn_32x3_fc512",
                "dataset": "mnist1d",
                "pruner": target,
                "sparsity": 0.5,
                "seed": seed,
                "variant": variant,
                "spec_json": json.dumps(spec),
            }
        )
        if target != "none":
            rows.extend(
                [
                    m(cid, "event", "test", "acc_pre", 0.9, step=0),
                    m(cid, "event", "test", "acc_post", 0.9 * s / 100.0, step=0),
                ]
            )
        for metric, value in (
            ("best_test_accuracy", g),
            ("val_selected_test_accuracy", g - 0.002),
            ("generalization_gap", 0.1),
            ("train_accuracy_before_last_event", fit),
            ("stability", s / 100.0),
        ):
            rows.append(m(cid, "final", "test", metric, value))

    for seed in range(seeds):
        u = rng.normal()
        base = 0.9 + rng.normal(0, 0.002) + 0.005 * seed_effect * u
        run(f"sbase{seed}", "none", "none", 1, seed, 100.0, base)
        for target in targets:
            for ev in every:
                z = rng.normal(size=2)
                s = 95 + 2 * (z[0] + abs(seed_effect) * u)
                g = base + prune_gain + 0.005 * (r * z[0] + np.sqrt(1 - r * r) * z[1])
                run(f"s{target}{ev}{seed}", target, "permanent", ev, seed, s, g)
        for variant, gain in gains.items():
            run(f"s{variant}{seed}", "prune_l", variant, 1, seed, 97.0, base + gain + rng.normal(0, 0.003))
    return pd.DataFrame(cells), pd.DataFrame(rows)


def potential(
    rng: np.random.Generator,
    gap_drop: float,
    *,
    seeds: int = 6,
    pruners=("global_magnitude", "lamp"),
    sparsities=(0.8, 0.9, 0.95),
    types=("noise", "blur"),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Leaderboard-like cells: clean accuracy falls by 0.004 s (commensurate everywhere), shifted
    accuracy by ``gap_drop * (s - 0.8)`` more (0: the same fall as clean), N(0, 0.002) noise."""
    cells, rows = [], []
    for seed in range(seeds):
        for pruner in pruners:
            for s in sparsities:
                cid = f"c{pruner}{s}{seed}"
                cells.append(
                    {
                        **CELL,
                        "cell_id": cid,
                        "parent_id": f"p{seed}",
                        "arch": "mlp_512x2",
                        "dataset": "mnist1d",
                        "pruner": pruner,
                        "sparsity": s,
                        "seed": seed,
                    }
                )
                for phase, loss in (("dense", 0.0), ("retrained", 0.004 * s)):
                    rows.append(m(cid, phase, "test", "accuracy", 0.95 - loss))
                    for t in types:
                        extra = gap_drop * (s - 0.8) if phase == "retrained" else 0.0
                        for sev in range(1, 6):
                            acc = 0.8 - loss - extra - 0.01 * sev + rng.normal(0, 0.002)
                            rows.append(m(cid, phase, t, "accuracy", acc, kind="corruption", severity=sev))
    return pd.DataFrame(cells), pd.DataFrame(rows)


def mask_controls(
    rng: np.random.Generator, shuffle_effect: dict[str, float], *, seeds: int = 10, sd: float = 0.004
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cells of each pruner with control none / shuffle_layer / reinit / invert; a control's
    retrained accuracy is the unaltered one plus ``shuffle_effect[pruner]`` (shuffle, reinit)
    or minus 0.05 (invert), plus N(0, sd)."""
    cells, rows = [], []
    for pruner, effect in shuffle_effect.items():
        for seed in range(seeds):
            base = 0.9 + rng.normal(0, 0.01)
            for control, shift in (
                ("none", 0.0),
                ("shuffle_layer", effect),
                ("reinit", effect),
                ("invert", -0.05),
            ):
                cid = f"c{pruner}{control}{seed}"
                cells.append(
                    {
                        **CELL,
                        "cell_id": cid,
                        "parent_id": f"p{seed}",
                        "arch": "cnn_32x3_fc512",
                        "dataset": "mnist1d",
                        "pruner": pruner,
                        "sparsity": 0.9,
                        "seed": seed,
                        "control": control,
                    }
                )
                acc = base + shift + (rng.normal(0, sd) if control != "none" else 0.0)
                rows.append(m(cid, "retrained", "test", "accuracy", acc))
                rows.append(m(cid, "dense", "test", "accuracy", 0.92))
    return pd.DataFrame(cells), pd.DataFrame(rows)


def write_store(
    root: Path, studies: dict[str, tuple[dict, pd.DataFrame, pd.DataFrame]], per_cell: bool = True
) -> Path:
    """Write frames as a store (cells, metrics, study manifests) the analysis reads from disk;
    ``per_cell=False`` writes one Parquet file per study (the reader takes any part file)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from core.schema import CELL_SCHEMA, METRIC_SCHEMA

    def cell_row(rec: dict) -> dict:
        row = {c: rec.get(c) for c in CELL_SCHEMA.names}
        row["status"] = "ok"
        for c in CELL_SCHEMA.names:  # pandas reads a missing string as NaN
            if (
                isinstance(row[c], float)
                and np.isnan(row[c])
                and pa.types.is_string(CELL_SCHEMA.field(c).type)
            ):
                row[c] = None
        return row

    def metric_rows(g: pd.DataFrame) -> list[dict]:
        recs = [{c: r.get(c) for c in METRIC_SCHEMA.names} for r in g.to_dict("records")]
        for r in recs:
            for c in ("class", "step", "severity"):
                r[c] = None if r[c] is None or (isinstance(r[c], float) and np.isnan(r[c])) else int(r[c])
        return recs

    for d in ("cells", "metrics", "studies"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for name, (definition, cells, metrics) in studies.items():
        if per_cell:
            for rec in cells.to_dict("records"):
                pq.write_table(
                    pa.Table.from_pylist([cell_row(rec)], schema=CELL_SCHEMA),
                    root / "cells" / f"{rec['cell_id']}.parquet",
                )
            for cid, g in metrics.groupby("cell_id"):
                pq.write_table(
                    pa.Table.from_pylist(metric_rows(g), schema=METRIC_SCHEMA),
                    root / "metrics" / f"{cid}.parquet",
                )
        else:
            rows = [cell_row(r) for r in cells.to_dict("records")]
            pq.write_table(
                pa.Table.from_pylist(rows, schema=CELL_SCHEMA), root / "cells" / f"part-{name}.parquet"
            )
            pq.write_table(
                pa.Table.from_pylist(metric_rows(metrics), schema=METRIC_SCHEMA),
                root / "metrics" / f"part-{name}.parquet",
            )
        manifest = {
            "manifest_version": 1,
            "name": name,
            "version": 1,
            "definition": definition,
            "cell_ids": sorted(cells["cell_id"]),
        }
        (root / "studies" / f"{name}.json").write_text(canonical_json(manifest))
    return root


def study_definition(name: str) -> dict:
    """A study file's definition as read (``benchmarks/studies/<name>.toml``)."""
    import tomllib

    return tomllib.loads(
        (Path(__file__).resolve().parent.parent / "benchmarks" / "studies" / f"{name}.toml").read_text()
    )
