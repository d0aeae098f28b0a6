"""What ``harness verify`` checks on *every* cell of a bundle before it re-runs any (none of it
imports or runs anything the bundle names; a pruner must already be registered here, by
prunebench or by a plugin the verifier named with ``--plugin``):

- **the spec**: ``spec_json`` is a JSON object that is exactly a cell spec of this prunebench
  (every field type- and range-checked as a preset's would be, canonical as written), its
  pruner registered here from the plugin version the spec names, and the cell id is its id;
- **every column the report shows is the spec's**: arch, dataset, pruner, its kind, timing,
  version, config and plugin, sparsity, seed, recipe, control, parent id, ... are derived from
  the spec and this registry (``DERIVED``) and must equal the row's, so no cell can be
  relabelled; the budget columns are bounded by the spec (the dense epochs are the parent's
  recipe, pruning plus retraining at most what the recipe runs);
- **the cost of a re-run** is within the limits (``harness.bundle.LIMITS``): epochs, set sizes,
  scoring examples, batch size;
- **the metric rows agree with the cells**: each cell's row count is the one its row records,
  every metric is one ``core.metrics`` declares, in its declared range, each pruning cell's
  achieved sparsity (unit sparsity for structured pruners) is its spec's within
  ``SPARSITY_SLACK``, cells of one dense parent and evaluation config report identical dense
  rows, and no two dense parents report identical dense rows (copied numbers).

A problem is a ``BundleError``: one line naming the first cell and what is wrong (and how many
more there are); exit status 2, before any work.
"""

from __future__ import annotations

import json
import math

import pandas as pd
import pyarrow as pa

from benchmarks.cells import kind_named, kind_of
from core.config import ConfigError, config_dict, make_config
from core.metrics import METRICS
from core.metrics import metric as declared_metric
from core.registry import UnknownNameError
from core.spec import SPEC_VERSION, canonical_json
from harness.bundle import LIMITS, BundleError, Limits

KEY = ("phase", "eval_set", "kind", "severity", "metric", "class", "step")
SPARSITY_SLACK = 0.02  # reported sparsity against the spec's, for cells that are not re-run
MAX_SPEC_CHARS = 65_536
DERIVED = (
    "cell_id", "parent_id", "cell_type", "arch", "dataset", "pruner", "pruner_kind", "pruner_timing",
    "pruner_version", "pruner_config", "plugin", "plugin_version", "sparsity", "seed", "retrain", "control",
    "eval_sets", "schedule", "score", "variant", "spec_json",
)  # fmt: skip


def not_compared(metric: str) -> bool:
    """Wall-clock metrics (declared ``verify = "never"``, ``core.metrics``), never compared."""
    spec = declared_metric(metric)
    return spec is not None and spec.verify == "never"


def never_compared() -> str:
    """The metrics never compared, as a glob (``latency_*``)."""
    names = [n for m in METRICS if m.verify == "never" for n in m.names]
    prefix = names[0]
    while not all(n.startswith(prefix) for n in names):
        prefix = prefix[:-1]
    return prefix + "*"


def untrusted_spec(spec_json: object):
    """The cell spec (of a registered kind, ``benchmarks.cells``) a bundle's ``spec_json`` is
    exactly, or ``ValueError`` saying why not. Only JSON is parsed; nothing is imported."""
    from pruners import PRUNERS, make_pruner_config

    if not isinstance(spec_json, str) or len(spec_json) > MAX_SPEC_CHARS:
        raise ValueError(f"spec_json is not a string of at most {MAX_SPEC_CHARS} characters")
    try:
        d = json.loads(spec_json)
    except (ValueError, RecursionError):
        raise ValueError("spec_json is not valid JSON") from None
    if not isinstance(d, dict):
        raise ValueError("spec_json is not a JSON object")
    if d.get("spec_version") != SPEC_VERSION:
        raise ValueError(f"spec_version {d.get('spec_version')!r}; this prunebench reads {SPEC_VERSION}")
    try:
        kind = kind_named(d)
    except UnknownNameError as exc:
        raise ValueError(f"spec_json is not a cell spec: {exc}") from None
    fields = {k: v for k, v in d.items() if k not in ("spec_version", "cell_type")}
    name_key, config_key = kind.pruner_fields
    try:
        for key, config in kind.config_fields.items():
            fields[key] = make_config(config, _table(fields.get(key), key), key)
        name = fields.get(name_key)
        if not isinstance(name, str):
            raise ValueError("names no pruner")
        PRUNERS.get(name)  # registered here, or UnknownNameError
        fields[config_key] = config_dict(make_pruner_config(name, _table(fields.get(config_key), config_key)))
        spec = kind.spec_type(**fields)
    except UnknownNameError:
        raise ValueError(
            f"pruner {name!r} is not registered here; if a plugin provides it, install the plugin and "
            f"name it with --plugin MODULE (verify imports nothing a bundle names)"
        ) from None
    except (ConfigError, TypeError, ValueError) as exc:
        raise ValueError(
            f"spec_json is not a cell spec: {(str(exc).splitlines() or [''])[0][:200]}"
        ) from None
    if canonical_json(spec.to_dict()) != canonical_json(d):
        raise ValueError("spec_json is not the canonical form of the spec it describes")
    return spec


def _table(value, key: str) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"{key} is not a table")
    return value


def derived_columns(spec, cell_id: str) -> dict:
    """The columns of ``DERIVED`` as this prunebench writes them for ``spec`` (its kind's row)."""
    row = kind_of(spec).row(spec, cell_id)
    return {k: row.get(k) for k in DERIVED}


def rerun_epochs(spec) -> float:
    """Training epochs a re-run of the cell costs: its dense parent's and its own."""
    kind = kind_of(spec)
    parent = kind.parent(spec)
    return (float(parent.train.epochs) if parent is not None else 0.0) + kind.epochs(spec)


def cost_problem(spec, limits: Limits) -> str | None:
    epochs = rerun_epochs(spec)
    if epochs > limits.cell_epochs:
        return f"a re-run costs {epochs:g} training epochs, over the limit of {limits.cell_epochs}"
    if spec.train.batch_size < limits.min_batch_size:
        return f"training batch size {spec.train.batch_size}, under the limit of {limits.min_batch_size}"
    ev = kind_of(spec).eval_config(spec)
    if ev is not None:
        largest = max(ev.shift_set_size, ev.ood_set_size)
        if largest > limits.set_size:
            return f"evaluation sets of {largest} examples, over the limit of {limits.set_size}"
        if ev.score_batches * ev.score_batch_size > limits.score_examples:
            return f"{ev.score_batches * ev.score_batch_size} scoring examples, over {limits.score_examples}"
    return None


def budget_problem(row: dict, spec) -> str | None:
    """The row's budget columns against what its spec allows (``CellKind.budget_problem``)."""
    budget = [row.get(c) for c in ("epochs_dense", "epochs_prune", "epochs_retrain")]
    if any(not isinstance(v, float | int) or not math.isfinite(v) or v < 0 for v in budget):
        return "its budget columns are not finite non-negative numbers"
    return kind_of(spec).budget_problem(spec, budget)


def cell_problem(row: dict, limits: Limits) -> tuple[object | None, str | None]:
    """``(spec, problem)`` of one cell row: its spec, columns, budget and cost."""
    if row.get("status") != "ok":
        return None, f"status {row.get('status')!r}, not 'ok'"
    try:
        spec = untrusted_spec(row.get("spec_json"))
    except ValueError as exc:
        return None, str(exc)
    kind = kind_of(spec)
    if kind.cell_id(spec) != row.get("cell_id"):
        return spec, "its cell id is not the id of its spec_json"
    try:
        kind.check_plugin(spec)  # the plugin version the spec names is the one installed here
    except RuntimeError as exc:
        return spec, str(exc)
    derived = derived_columns(spec, row["cell_id"])
    for key in DERIVED:
        if row.get(key) != derived[key]:
            return spec, f"column {key} is {row.get(key)!r}, its spec says {derived[key]!r} (relabelled)"
    return spec, budget_problem(row, spec) or cost_problem(spec, limits)


def _label(row: dict) -> str:
    return f"cell {row.get('cell_id')!r}"


def check_cells(bundle: str, cells: list[dict], limits: Limits = LIMITS) -> dict[str, object]:
    """``cell_id -> spec`` of every cell; ``BundleError`` at the first inconsistent one."""
    if not cells:
        raise BundleError(f"bundle {bundle!r}: holds no cells")
    if len(cells) > limits.cells:
        raise BundleError(f"bundle {bundle!r}: {len(cells)} cells, over the limit of {limits.cells}")
    specs, problems = {}, []
    for row in cells:
        spec, problem = cell_problem(row, limits)
        if problem:
            problems.append(f"{_label(row)}: {problem}")
        elif row["cell_id"] in specs:
            problems.append(f"{_label(row)}: listed twice")
        else:
            specs[row["cell_id"]] = spec
    _raise(bundle, problems)
    return specs


def _raise(bundle: str, problems: list[str]) -> None:
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        raise BundleError(f"bundle {bundle!r}: refused: {problems[0]}{more}")


def check_metrics(
    bundle: str, cells: list[dict], specs: dict, metrics: pa.Table, limits: Limits = LIMITS
) -> None:
    """The metric rows against the cells (module docstring); ``BundleError`` at the first problem."""
    if metrics.num_rows > limits.metric_rows:
        raise BundleError(
            f"bundle {bundle!r}: {metrics.num_rows} metric rows, over the limit of {limits.metric_rows}"
        )
    df = metrics.to_pandas()
    problems = []
    counts = df.groupby("cell_id").size()
    for cell_id in sorted(set(counts.index) - set(specs)):
        problems.append(f"cell {cell_id!r}: metric rows of a cell the bundle does not hold")
    for row in cells:
        n = int(counts.get(row["cell_id"], 0))
        if row.get("metric_rows") is not None and n != row["metric_rows"]:
            problems.append(f"{_label(row)}: {n} metric rows, its row records {row['metric_rows']}")
    problems += _range_problems(df) + _sparsity_problems(df, specs) + _dense_problems(df, specs)
    _raise(bundle, problems)


def _range_problems(df: pd.DataFrame) -> list[str]:
    """Rows of a metric ``core.metrics`` does not declare, or outside their metric's declared range."""
    problems, low, high = [], {}, {}
    for name in sorted(df["metric"].unique()):
        spec = declared_metric(name)
        if spec is None:
            cell = df.loc[df["metric"] == name, "cell_id"].iloc[0]
            problems.append(f"cell {cell!r}: metric {name!r} is not one this prunebench defines")
        low[name], high[name] = (spec.low, spec.high) if spec else (-math.inf, math.inf)
    low, high = df["metric"].map(low), df["metric"].map(high)
    bad = df[df["value"].notna() & ((df["value"] < low) | (df["value"] > high))]
    return problems + [
        f"cell {r.cell_id!r}: {r.metric} {r.phase}/{r.eval_set} is {r.value!r}, outside its range"
        for r in bad.head(3).itertuples()
    ]


def _sparsity_problems(df: pd.DataFrame, specs: dict) -> list[str]:
    rows = df[(df["phase"] == "retrained") & (df["eval_set"] == "model")]
    found = rows.set_index(["cell_id", "metric"])["value"]
    problems = []
    for cell_id, spec in specs.items():
        check = kind_of(spec).sparsity_check(spec)
        if check is None:
            continue
        metric, target = check
        value = found.get((cell_id, metric))
        if value is None or not abs(float(value) - target) <= SPARSITY_SLACK:
            problems.append(
                f"cell {cell_id!r}: retrained {metric} {value!r}, its spec says {target:g} "
                f"(allowed: within {SPARSITY_SLACK})"
            )
    return problems


def _dense_problems(df: pd.DataFrame, specs: dict) -> list[str]:
    """Cells of one (dense parent, evaluation config) report one set of dense rows; two dense
    parents never report identical dense rows (numbers copied from another cell)."""
    compared = {m: not not_compared(m) for m in df["metric"].unique()}
    dense = df[(df["phase"] == "dense") & df["metric"].map(compared).astype(bool)]
    if dense.empty:
        return []
    hashed = pd.util.hash_pandas_object(dense[[*KEY, "value"]], index=False).to_numpy()
    parts = pd.DataFrame(
        {
            "cell_id": dense["cell_id"].to_numpy(),
            "lo": (hashed & 0xFFFFFFFF).astype("int64"),
            "hi": (hashed >> 32).astype("int64"),
        }
    )
    prints = parts.groupby("cell_id").agg(lo=("lo", "sum"), hi=("hi", "sum"), n=("lo", "size"))
    prints["print"] = list(zip(prints["lo"], prints["hi"], prints["n"], strict=True))
    groups: dict[tuple, set] = {}
    owners: dict[tuple, str] = {}
    problems = []
    for cell_id, fingerprint in prints["print"].items():
        spec = specs.get(cell_id)
        kind = kind_of(spec) if spec is not None else None
        parent = kind.parent(spec) if kind is not None else None
        if parent is None:
            continue
        key = (parent.id, kind.eval_config(spec).id)
        groups.setdefault(key, set()).add(fingerprint)
        other = owners.setdefault(fingerprint, parent.id)
        if other != parent.id:
            problems.append(
                f"cell {cell_id!r}: its dense rows are identical to those of dense parent {other} "
                f"(another seed or recipe): copied numbers"
            )
    for (parent, _), found in groups.items():
        if len(found) > 1:
            problems.append(
                f"the cells of dense parent {parent} report different dense rows (edited numbers)"
            )
    return problems
