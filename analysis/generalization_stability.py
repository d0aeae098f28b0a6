"""The generalization-stability tradeoff (Bartoldson, Morcos, Barbu & Erlebacher, "The
Generalization-Stability Tradeoff in Neural Network Pruning", NeurIPS 2020).

Reads the stability study's cells (``study == 'stability'``, written by
``benchmarks.stability``). Definitions (``shared/design/claims.md`` section 3):

- instability of one event ``I = (acc_pre - acc_post) / acc_pre`` (full clean test set)
- stability ``S = 100 (1 - I)``; a run's stability = mean ``S`` over its events (100 if none)
- generalization: best test accuracy at an epoch >= the last event's epoch; generalization
  gap = train - test accuracy at that epoch. Unit of observation: one run.

Claims-table rows, per (arch, dataset), over the permanent-pruning runs (all targets,
scores, schedules):

- ``stability_accuracy``: Pearson r (Fisher-z CI) and Kendall tau (bootstrap CI), both with
  permutation p-values, between run stability and best test accuracy; claimed sign -.
- ``stability_gap``: the same against the generalization gap; claimed sign + (less stable
  pruning, smaller gap).
- ``prune_l_vs_prune_s``: Student's t-test of best accuracy, prune_l - prune_s, pooled and
  per schedule; claimed sign +.
- ``noise_vs_permanent``: per noise variant, paired by (target, score, schedule, seed): t and
  Wilcoxon on best accuracy noise - permanent (claimed sign +: removal need not be
  permanent; a significantly negative difference contradicts it), and Welch of each variant
  (permanent included) against the no-pruning baseline (claimed +).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.load import rng_for, stability_cells
from analysis.stats import kendall, paired_t, pearson, student, welch, wilcoxon_signed_rank
from analysis.table import make_row, missing_row

CLAIMS = ("stability_accuracy", "stability_gap", "prune_l_vs_prune_s", "noise_vs_permanent")
TARGETS = ("prune_s", "prune_l", "prune_r")
N_PERM = 2000
N_BOOT = 2000


def instability(acc_pre, acc_post) -> np.ndarray:
    """``I = (acc_pre - acc_post) / acc_pre``; NaN when ``acc_pre = 0``."""
    pre, post = np.asarray(acc_pre, float), np.asarray(acc_post, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pre > 0, (pre - post) / pre, np.nan)


def event_stability(acc_pre, acc_post) -> np.ndarray:
    """``S = 100 (1 - I)``."""
    return 100.0 * (1.0 - instability(acc_pre, acc_post))


def run_stability(acc_pre, acc_post) -> float:
    """Mean ``S`` over a run's events; 100 for a run without events."""
    s = event_stability(acc_pre, acc_post)
    s = s[np.isfinite(s)]
    return float(s.mean()) if s.size else 100.0


def generalization(epochs, train_acc, test_acc, last_event_epoch: float) -> tuple[float, float]:
    """(best test accuracy at epochs >= ``last_event_epoch``, train - test gap at that epoch)."""
    e, tr, te = (np.asarray(v, float) for v in (epochs, train_acc, test_acc))
    ok = (e >= last_event_epoch) & np.isfinite(te)
    if not ok.any():
        return float("nan"), float("nan")
    idx = np.nonzero(ok)[0]
    best = idx[np.argmax(te[idx])]  # first epoch reaching the maximum
    return float(te[best]), float(tr[best] - te[best])


def run_table(cells: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per stability run: scope, ``stability``, ``best_acc``, ``gap``, ``events``.

    Computed from the primary rows (event ``acc_pre``/``acc_post``/``epoch``, epoch curves)
    when stored, else from the run's ``final`` summary rows.
    """
    sc = stability_cells(cells)
    if sc.empty:
        return pd.DataFrame()
    m = metrics[metrics.cell_id.isin(set(sc.cell_id))]
    ev = m[m.phase == "event"].pivot_table(
        index=["cell_id", "step"], columns="metric", values="value", aggfunc="first"
    )
    fin = m[(m.phase == "final") & m["class"].isna() & (m.eval_set == "test")].pivot_table(
        index="cell_id", columns="metric", values="value", aggfunc="first"
    )
    ep = m[(m.phase == "epoch") & (m.metric == "accuracy")].pivot_table(
        index=["cell_id", "step"], columns="eval_set", values="value", aggfunc="first"
    )
    ev_cells = set(ev.index.get_level_values(0)) if len(ev) else set()
    ep_cells = (
        set(ep.index.get_level_values(0)) if len(ep) and {"train", "test"} <= set(ep.columns) else set()
    )
    recs = []
    for cid in sc["cell_id"]:
        f = fin.loc[cid] if cid in fin.index else pd.Series(dtype=float)
        if cid in ev_cells and {"acc_pre", "acc_post"} <= set(ev.columns):
            e = ev.loc[cid]
            stab, n_ev = run_stability(e["acc_pre"], e["acc_post"]), len(e)
            last = float(e["epoch"].max()) if "epoch" in e else float(f.get("last_event_epoch", 0.0))
        elif "stability" in f and np.isfinite(f["stability"]):
            stab, n_ev = float(f["stability"]), int(np.nan_to_num(f.get("events", 0)))
            last = float(f.get("last_event_epoch", 0.0))
        elif cid in ep_cells:  # a run without events: stability 100
            stab, n_ev, last = 100.0, 0, 0.0
        else:
            continue
        last = 0.0 if not np.isfinite(last) or n_ev == 0 else last
        if cid in ep_cells:
            c = ep.loc[cid]
            best, gap = generalization(c.index.to_numpy(float), c["train"], c["test"], last)
        else:
            best, gap = float(f.get("best_test_accuracy", np.nan)), float(f.get("generalization_gap", np.nan))
        recs.append({"cell_id": cid, "stability": stab, "best_acc": best, "gap": gap, "events": n_ev})
    if not recs:
        return pd.DataFrame()
    cols = ["cell_id", "arch", "dataset", "seed", "target", "score", "schedule", "variant"]
    return pd.DataFrame(recs).merge(sc[cols], on="cell_id")


def permanent_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs the correlation and prune_l/prune_s tests use: permanent pruning of a target."""
    return runs[(runs["variant"] == "permanent") & runs["target"].isin(TARGETS)]


def analyze(
    cells: pd.DataFrame, metrics: pd.DataFrame, n_perm: int = N_PERM, n_boot: int = N_BOOT
) -> list[dict]:
    runs = run_table(cells, metrics)
    if runs.empty:
        return [missing_row(c, "no stability-study runs in the results") for c in CLAIMS]
    rows: list[dict] = []
    for (ar, ds), g in runs.groupby(["arch", "dataset"]):
        scope = {"arch": ar, "dataset": ds}
        perm = permanent_runs(g)
        rows += correlation_rows(perm, scope, n_perm, n_boot)
        rows += target_rows(perm, scope)
        rows += noise_rows(g, scope)
    for c in CLAIMS:
        if not any(r["claim"] == c for r in rows):
            rows.append(
                missing_row(c, "the stability runs present do not contain the groups this test compares")
            )
    return rows


def correlation_rows(perm: pd.DataFrame, scope: dict, n_perm: int, n_boot: int) -> list[dict]:
    rows = []
    for claim, col, direction in (("stability_accuracy", "best_acc", -1), ("stability_gap", "gap", +1)):
        rng = rng_for(claim, *scope.values())
        what = "best test accuracy" if col == "best_acc" else "generalization gap (train - test)"
        pr = pearson(perm["stability"], perm[col], rng, n_perm)
        rows.append(
            make_row(
                claim,
                "pearson",
                pr,
                direction=direction,
                description=f"Pearson r of run stability vs {what}; Fisher-z CI, permutation p",
                **scope,
            )
        )
        kd = kendall(perm["stability"], perm[col], rng, n_perm, n_boot)
        rows.append(
            make_row(
                claim,
                "kendall",
                kd,
                direction=direction,
                description=f"Kendall tau of run stability vs {what}; bootstrap CI, permutation p",
                **scope,
            )
        )
    return rows


def target_rows(perm: pd.DataFrame, scope: dict) -> list[dict]:
    rows = []
    groups = [("all", perm)] + [(s, g) for s, g in perm.groupby("schedule")]
    for name, g in groups:
        big, small = g[g.target == "prune_l"]["best_acc"], g[g.target == "prune_s"]["best_acc"]
        if big.empty or small.empty:
            continue
        test = "t_student[prune_l-prune_s]" if name == "all" else f"t_student[prune_l-prune_s|{name}]"
        rows.append(
            make_row(
                "prune_l_vs_prune_s",
                test,
                student(big, small),
                direction=+1,
                description=f"best test accuracy prune_l - prune_s, permanent runs, schedule {name}",
                **scope,
            )
        )
    return rows


def noise_rows(g: pd.DataFrame, scope: dict) -> list[dict]:
    rows = []
    keys = ["target", "score", "schedule", "seed"]
    perm = g[g.variant == "permanent"].set_index(keys)["best_acc"]
    base = g[g.target == "none"]["best_acc"]
    for v in sorted(set(g.variant) - {"permanent", "none"}):
        noisy = g[g.variant == v].set_index(keys)["best_acc"]
        both = pd.concat([noisy.rename("noise"), perm.rename("perm")], axis=1, join="inner").dropna()
        if len(both):
            d = both["noise"] - both["perm"]
            desc = f"best test accuracy {v} - permanent, paired by (target, score, schedule, seed)"
            rows.append(
                make_row(
                    "noise_vs_permanent",
                    f"t_paired[{v}-permanent]",
                    paired_t(both["noise"], both["perm"]),
                    direction=+1,
                    description=desc,
                    **scope,
                )
            )
            rows.append(
                make_row(
                    "noise_vs_permanent",
                    f"wilcoxon[{v}-permanent]",
                    wilcoxon_signed_rank(d),
                    direction=+1,
                    description=desc + " (Hodges-Lehmann)",
                    **scope,
                )
            )
    if len(base):
        for v in sorted(set(g.variant) - {"none"}):
            x = g[(g.variant == v) & (g.target != "none")]["best_acc"]
            rows.append(
                make_row(
                    "noise_vs_permanent",
                    f"welch[{v}-none]",
                    welch(x, base),
                    direction=+1,
                    description=f"best test accuracy of {v} runs - no-pruning baseline (Welch)",
                    **scope,
                )
            )
    return rows
