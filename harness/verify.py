"""``harness verify``: check every cell of an untrusted bundle, re-run a sample nobody can
predict, and accept the bundle only when the numbers agree.

1. **Read** (``harness.bundle``): only the members the format defines, within the size limits,
   every member's SHA-256 as the manifest lists it. Nothing the bundle names or holds is
   imported, unpickled or executed: a pruner is re-run only when it is registered here, by
   prunebench or by a plugin the verifier names with ``--plugin``.
2. **Check every cell** (``harness.bundle_checks``): spec, derived columns, budget, re-run cost,
   metric rows. Any problem: one line, exit status 2, nothing written.
3. **Draw the sample**: ``sample`` cells, round robin over the pruners in a random order, with
   ``numpy.random.default_rng(seed)``; unless ``--seed`` is given, the seed is drawn from the
   bundle file's SHA-256 and the verifier's secret (``PRUNEBENCH_VERIFY_SECRET``) or, without
   one, the time and the OS's randomness, so a submitter cannot know which cells will be re-run.
   The seed is printed: ``--seed`` repeats a verification.
4. **Re-run** each sampled cell from its spec in a temporary store (removed afterwards; CPU, one
   torch thread as in every worker, at most ``LIMITS.cell_seconds`` each), and compare every
   reported metric row with the measured one, joined on (phase, eval_set, kind, severity,
   metric, class, step), and the budget columns:

   - **bit-identical** when the bundle's environment matches this machine's (same torch and
     numpy versions, same platform machine and CPU model) and every sampled cell was run on
     the CPU with those versions;
   - **within tolerance** otherwise, as each metric declares (``core.metrics``, ``verify``):
     ``|reported - measured| <= ABS_TOLERANCE`` (0.02) for ``absolute`` ones (the bounded
     metrics), ``<= REL_TOLERANCE`` (5%) of the larger magnitude for ``relative`` ones; NaN
     agrees only with NaN. Epochs agree exactly, training FLOPs relatively.

   Wall-clock metrics (``latency_*``, declared ``never``) are never compared. A row reported
   but not measured, or measured but not reported, is a disagreement. Any disagreement: exit
   status 1, the cells listed.
5. **Accept** (``--accept-into DIR``): the bundle's cells and metrics are written to
   ``<DIR>/submissions/<bundle stem>/`` as a store folder (``cells/``, ``metrics/``, with the
   store's checksums), its leaderboard and study manifests, and ``verification.json`` (format
   ``VERIFICATION_VERSION``: the sample, its seed, the rule, each re-run cell's result), in one
   directory rename. The report lists each pruner of the entry with how many of its cells were
   re-run.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import signal
import struct
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from core.atomic import TMP_PREFIX, atomic_write_bytes
from core.integrity import sha256_file
from core.metrics import ABS_TOLERANCE, REL_TOLERANCE
from core.metrics import metric as declared_metric
from core.schema import CELL_SCHEMA, METRIC_SCHEMA, SCHEMA_VERSION
from harness.bundle import (
    CELLS,
    LEADERBOARD,
    LIMITS,
    METRICS,
    BundleError,
    Limits,
    bundle_stem,
    integrity_problems,
    read_bundle,
)
from harness.bundle_checks import KEY, check_cells, check_metrics, never_compared, not_compared
from harness.storage import ResultsStore
from harness.submit import machine_environment

VERIFICATION_VERSION = 2
MISSING = "(none)"  # a row that one side lacks
ENV_KEYS = ("torch_version", "numpy_version", "machine", "cpu_model")  # must match for bit-identity
SECRET_ENV = "PRUNEBENCH_VERIFY_SECRET"
BUDGET = ("epochs_dense", "epochs_prune", "epochs_retrain", "train_flops")


# -- comparison -----------------------------------------------------------------------------
def _bits(value: float | None) -> bytes | None:
    return None if value is None else struct.pack("<d", value)


def values_agree(metric: str, reported: float | None, measured: float | None, exact: bool) -> bool:
    if exact:
        return _bits(reported) == _bits(measured)
    if reported is None or measured is None:
        return reported is None and measured is None
    if math.isnan(reported) or math.isnan(measured):
        return math.isnan(reported) and math.isnan(measured)
    if metric.startswith("epochs_"):
        return reported == measured
    spec = declared_metric(metric)
    if spec is not None and spec.verify == "absolute":
        return abs(reported - measured) <= ABS_TOLERANCE
    return abs(reported - measured) <= REL_TOLERANCE * max(abs(reported), abs(measured))


def _keyed(rows: list[dict]) -> dict[tuple, float | None]:
    return {tuple(r[k] for k in KEY): r["value"] for r in rows if not not_compared(r["metric"])}


def _budget_rows(row: dict) -> list[dict]:
    """The cell row's budget columns as rows of the comparison (phase ``cell``, set ``budget``)."""
    return [
        {"phase": "cell", "eval_set": "budget", "kind": None, "severity": None, "metric": c, "class": None,
         "step": None, "value": row.get(c)}
        for c in BUDGET
    ]  # fmt: skip


def compare_rows(reported: list[dict], measured: list[dict], exact: bool) -> tuple[int, list[tuple]]:
    """``(rows compared, disagreements)``; a disagreement is ``(key, reported, measured)``, with
    ``MISSING`` on the side that lacks the row. Wall-clock rows are left out."""
    rep, mea = _keyed(reported), _keyed(measured)
    diffs = []
    for key in [*rep, *(k for k in mea if k not in rep)]:
        r, m = rep.get(key, MISSING), mea.get(key, MISSING)
        if MISSING in (r, m) or not values_agree(key[4], r, m, exact):
            diffs.append((key, r, m))
    return len(rep), diffs


def describe_key(key: tuple) -> str:
    phase, eval_set, _kind, severity, metric, cls, step = key
    where = eval_set if not severity else f"{eval_set}@{severity}"
    name = metric if cls is None else f"{metric}[{cls}]"
    return f"{name} {phase}/{where}" + ("" if step is None else f" step {step}")


def _fmt(value) -> str:
    return value if isinstance(value, str) else repr(value)


def comparison_rule(bundle_env: dict, cells: list[dict]) -> tuple[bool, str]:
    """``(exact, why)``: bit-identity when the environments match and every cell ran on the CPU."""
    here = machine_environment()
    bundle_env = bundle_env if isinstance(bundle_env, dict) else {}
    differs = [
        f"{k} {bundle_env.get(k)!r} in the bundle, {here[k]!r} here"
        for k in ENV_KEYS
        if bundle_env.get(k) != here[k]
    ]
    for cell in cells:
        if cell["device"] != "cpu":
            differs.append(f"cell {cell['cell_id']} ran on {cell['device']!r}")
        for k in ("torch_version", "numpy_version"):
            if cell[k] != here[k]:
                differs.append(f"cell {cell['cell_id']} ran with {k} {cell[k]!r}, {here[k]!r} here")
    if not differs:
        return True, (
            f"bit-identical (torch {here['torch_version']}, numpy {here['numpy_version']}, "
            f"{here['machine']}, {here['cpu_model']}, cpu match the bundle's)"
        )
    return False, (
        f"within tolerance (abs {ABS_TOLERANCE} for [0, 1] metrics, rel {REL_TOLERANCE:.0%} elsewhere) "
        f"because {differs[0]}" + (f" (+{len(differs) - 1} more differences)" if len(differs) > 1 else "")
    )


# -- the sample -------------------------------------------------------------------------------
def draw_seed(bundle_sha256: str) -> tuple[int, str]:
    """``(seed, what it was drawn from)``: the bundle's hash and the verifier's secret, or the time."""
    secret = os.environ.get(SECRET_ENV)
    source = "the verifier's secret" if secret else "the time"
    salt = secret if secret else f"{time.time_ns()}:{os.urandom(16).hex()}"
    digest = hashlib.sha256(f"{bundle_sha256}:{salt}".encode()).hexdigest()
    return int(digest[:15], 16), f"drawn from the bundle's SHA-256 and {source}"


def sample_cells(cells: list[dict], n: int, seed: int) -> list[dict]:
    """``n`` cells drawn with ``default_rng(seed)``, round robin over the pruners in a random order."""
    import numpy as np

    rng = np.random.default_rng(seed)
    groups: dict[str, list[dict]] = {}
    for cell in sorted(cells, key=lambda c: c["cell_id"]):
        groups.setdefault(cell["pruner"], []).append(cell)
    names = sorted(groups)
    queues = [
        [groups[names[i]][j] for j in rng.permutation(len(groups[names[i]]))]
        for i in rng.permutation(len(names))
    ]
    picked: list[dict] = []
    while len(picked) < min(n, len(cells)):
        for queue in queues:
            if queue and len(picked) < n:
                picked.append(queue.pop(0))
    return picked


# -- verify ---------------------------------------------------------------------------------
def _check_writable(path: Path, what: str) -> None:
    """``path`` can be created and written (checked on its nearest existing folder, creating nothing)."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise BundleError(f"{what} {str(path)!r}: not writable ({str(existing)!r} is not a writable folder)")


def _label(cell: dict) -> str:
    sparsity = "-" if cell["sparsity"] is None else f"{cell['sparsity']:g}"
    return f"{cell['cell_id']} {cell['pruner']} {cell['arch']} {cell['dataset']} {sparsity}"


def verify(
    bundle: str,
    sample: int = 4,
    seed: int | None = None,
    accept_into: str | None = None,
    limits: Limits = LIMITS,
) -> int:
    """Check, re-run and compare a sample of ``bundle``'s cells; 0 accepted, 1 refused by the
    re-run, 2 refused before any re-run (unusable, inconsistent or over a limit). Pruners come
    from prunebench and the plugins already loaded (``--plugin``), never from the bundle."""
    from pruners.plugins import PluginError

    try:
        return _verify(bundle, sample, seed, accept_into, limits)
    except (BundleError, PluginError) as exc:
        print(f"prunebench: error: {exc}", file=sys.stderr)
        return 2


def _table(bundle: str, members: dict[str, bytes], name: str, schema: pa.Schema) -> pa.Table:
    # ParquetFile reads in this thread: pq.read_table's dataset scan can drop its last reference to
    # a Python-owned buffer on an Arrow pool thread after the scan, which aborts the interpreter
    # ("terminate called without an active exception") when that happens during its shutdown
    try:
        with pq.ParquetFile(pa.BufferReader(members[name])) as handle:
            table = handle.read()
    except KeyError:
        raise BundleError(f"bundle {bundle!r}: no {name} member") from None
    except (pa.ArrowException, OSError) as exc:
        raise BundleError(
            f"bundle {bundle!r}: {name} is not readable Parquet ({type(exc).__name__})"
        ) from None
    if table.schema.remove_metadata() != schema:
        raise BundleError(
            f"bundle {bundle!r}: {name} does not have the schema version {SCHEMA_VERSION} columns"
        )
    return table.replace_schema_metadata(None)


def _verify(bundle: str, sample: int, seed: int | None, accept_into: str | None, limits: Limits) -> int:
    if not 1 <= sample <= limits.sample:
        raise BundleError(f"--sample {sample}: must be from 1 to {limits.sample}")
    if seed is not None and seed < 0:
        raise BundleError(f"--seed {seed}: must be a non-negative integer")
    target = None
    if accept_into is not None:
        target = Path(accept_into) / "submissions" / bundle_stem(Path(bundle))
        _check_writable(target.parent, "--accept-into")
    manifest, members = read_bundle(bundle, limits)
    problems = integrity_problems(manifest, members)
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        raise BundleError(f"bundle {bundle!r}: refused: {problems[0]}{more}")
    cells_table = _table(bundle, members, CELLS, CELL_SCHEMA)
    if cells_table.num_rows > limits.cells:
        raise BundleError(
            f"bundle {bundle!r}: {cells_table.num_rows} cells, over the limit of {limits.cells}"
        )
    metrics_table = _table(bundle, members, METRICS, METRIC_SCHEMA)
    cells = cells_table.to_pylist()
    specs = check_cells(bundle, cells, limits)
    check_metrics(bundle, cells, specs, metrics_table, limits)

    bundle_sha = sha256_file(bundle)
    seed, source = (seed, "given with --seed") if seed is not None else draw_seed(bundle_sha)
    picked = sample_cells(cells, sample, seed)
    from harness.bundle_checks import rerun_epochs

    cost = sum(rerun_epochs(specs[c["cell_id"]]) for c in picked)
    if cost > limits.rerun_epochs:
        raise BundleError(
            f"bundle {bundle!r}: the sample of {len(picked)} cells costs {cost:g} training epochs, over the "
            f"limit of {limits.rerun_epochs}: lower --sample"
        )
    exact, why = comparison_rule(manifest.get("environment", {}), picked)
    print(
        f"bundle {Path(bundle).name}: {len(cells)} cells, {metrics_table.num_rows} metric rows "
        f"(commit {str(manifest.get('git_commit'))[:12]}, created {manifest.get('created_at')}); every cell "
        f"checked against its spec; re-running {len(picked)} of them"
    )
    print(f"sample seed {seed} ({source}; repeat this verification with --seed {seed})")
    print(f"rule: {why}; {never_compared()} metrics not compared")
    results, started = [], time.perf_counter()
    for cell, (status, compared, diffs, seconds) in zip(
        picked, _rerun(picked, metrics_table, exact, limits), strict=True
    ):
        if status != "ok":
            print(f"MISMATCH {_label(cell)}: re-run {status}")
        elif diffs:
            key, r, m = diffs[0]
            more = f" (+{len(diffs) - 1} more rows)" if len(diffs) > 1 else ""
            print(f"MISMATCH {_label(cell)}: {describe_key(key)} reported {_fmt(r)} measured {_fmt(m)}{more}")
        else:
            print(f"ok {_label(cell)}: {compared} rows {'equal' if exact else 'within tolerance'}")
        results.append(
            {
                "cell_id": cell["cell_id"], "pruner": cell["pruner"], "arch": cell["arch"],
                "dataset": cell["dataset"], "sparsity": cell["sparsity"], "rows_compared": compared,
                "rows_disagreeing": len(diffs), "rerun_status": status, "seconds": round(seconds, 3),
                "agrees": status == "ok" and not diffs,
            }
        )  # fmt: skip
    failed = [r["cell_id"] for r in results if not r["agrees"]]
    if failed:
        print(
            f"verdict: refused: {len(failed)} of {len(results)} sampled cells disagree: {', '.join(failed)}"
        )
        return 1
    where = ""
    if target is not None:
        record = {
            "verification_version": VERIFICATION_VERSION,
            "bundle": {
                "file": Path(bundle).name,
                "sha256": bundle_sha,
                **{k: manifest.get(k) for k in ("format_version", "created_at", "git_commit", "environment",
                                                "plugins", "preset_names")},
            },
            "cells": len(cells),
            "metric_rows": metrics_table.num_rows,
            "checked": "every cell: spec, derived columns, budget, metric rows (harness.bundle_checks)",
            "sample": {"requested": sample, "seed": seed, "seed_source": source,
                       "cell_ids": [c["cell_id"] for c in picked]},
            "rule": {
                "mode": "bit_identical" if exact else "tolerance",
                "description": why,
                "abs_tolerance": None if exact else ABS_TOLERANCE,
                "rel_tolerance": None if exact else REL_TOLERANCE,
                "not_compared": never_compared(),
            },
            "result": "accepted",
            "per_cell": results,
            "seconds": round(time.perf_counter() - started, 1),
            "verified_at": datetime.now(UTC).isoformat(),
            "verifier_environment": {**machine_environment(), "git_commit": _git_commit()},
        }  # fmt: skip
        write_entry(target, cells, specs, metrics_table, members, record)
        where = f"; entry written to {target}"
    mode = "bit-identical" if exact else "within tolerance"
    print(f"verdict: accepted: {len(results)} of {len(results)} sampled cells agree ({mode}){where}")
    return 0


def _git_commit() -> str:
    from harness.environment import git_commit

    return git_commit()


class RerunTimeout(Exception):
    """A re-run cell that ran past ``Limits.cell_seconds``."""


@contextmanager
def time_limit(seconds: int):
    """Raise ``RerunTimeout`` in this (main) thread after ``seconds``; no limit elsewhere."""
    if not hasattr(signal, "SIGALRM") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise RerunTimeout(f"the re-run took over {seconds} s, the limit of one cell")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _rerun(picked: list[dict], metrics: pa.Table, exact: bool, limits: Limits):
    """Yield ``(status, rows compared, disagreements, seconds)`` per picked cell, re-run on the CPU."""
    import pyarrow.compute as pc
    import torch

    from harness.executors import pin_threads
    from harness.tasks import cell_task

    threads = torch.get_num_threads()
    pin_threads()  # one torch thread, as in every worker: reductions run in the same order
    try:
        with tempfile.TemporaryDirectory(prefix="prunebench-verify-") as tmp:
            store = ResultsStore(tmp)
            store.prepare()
            for cell in picked:
                with time_limit(limits.cell_seconds):
                    outcome = cell_task(cell["spec_json"], tmp, "verify", "cpu", True, ())
                if outcome.status != "ok":
                    yield f"{outcome.status}: {outcome.reason}", 0, [], outcome.seconds
                    continue
                measured = pq.read_table(store.metrics_dir / f"{outcome.cell_id}.parquet").to_pylist()
                (row,) = pq.read_table(store.cell_path(outcome.cell_id)).to_pylist()
                reported = metrics.filter(pc.field("cell_id") == cell["cell_id"]).to_pylist()
                compared, diffs = compare_rows(
                    [*reported, *_budget_rows(cell)], [*measured, *_budget_rows(row)], exact
                )
                yield "ok", compared, diffs, outcome.seconds
    finally:
        torch.set_num_threads(threads)


def write_entry(
    target: Path, cells: list[dict], specs: dict, metrics: pa.Table, members: dict[str, bytes], record: dict
) -> None:
    """The accepted entry as a store folder, built under a hidden name and renamed into place;
    every column the report shows is written from the cell's spec (``derived_columns``)."""
    import pyarrow.compute as pc

    from harness.bundle_checks import derived_columns

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{target.name}-", dir=target.parent))
    try:
        store = ResultsStore(staging)
        ordered = metrics.sort_by("cell_id")
        spans: dict[str, tuple[int, int]] = {}
        if ordered.num_rows:  # each cell's rows are one run of the sorted table
            runs = pc.run_end_encode(ordered["cell_id"].combine_chunks())
            start = 0
            for cell_id, end in zip(runs.values.to_pylist(), runs.run_ends.to_pylist(), strict=True):
                spans[cell_id] = (start, end - start)
                start = end
        for cell in cells:
            start, n = spans.get(cell["cell_id"], (0, 0))
            row = {**cell, **derived_columns(specs[cell["cell_id"]], cell["cell_id"])}
            store.write_cell(row, ordered.slice(start, n))
        for name, data in members.items():
            if name == LEADERBOARD or name.startswith("studies/"):
                atomic_write_bytes(staging / name, data)
        atomic_write_bytes(
            staging / "verification.json", json.dumps(record, indent=1, sort_keys=True).encode()
        )
        old = None
        if target.exists():
            old = target.with_name(f"{TMP_PREFIX}{target.name}-old-{os.getpid()}")
            os.replace(target, old)
        os.replace(staging, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
