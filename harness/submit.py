"""Outside submissions: ``harness submit`` packs a results store into one bundle, ``harness verify``
re-runs a seeded sample of its cells and accepts the bundle only when the numbers agree.

Modelled on RobustBench, which stores each entry's reported number beside a re-measured one.

Bundle (``<name>.tar.gz``, format ``BUNDLE_FORMAT`` version ``BUNDLE_VERSION``)::

    manifest.json          format, created_at, submitting machine's environment (torch/numpy/python
                           versions, platform machine/processor, CPU model, device), git commit,
                           plugins (name, version) seen in the cells, preset names recorded in the
                           cells and the preset file's text, and the SHA-256 and size of every
                           other member
    cells.parquet          the store's committed ``ok`` cells (``core.schema.CELL_SCHEMA``)
    metrics.parquet        their metric rows (``METRIC_SCHEMA``)
    leaderboard.json       the store's leaderboard manifest, when present
    studies/<name>.json    the store's study manifests, when present

Verification: every member's hash must match the manifest and every cell's id must be the id
of its ``spec_json``; then ``sample`` cells, drawn with ``numpy.random.default_rng(seed)`` round
robin over the pruners (so different pruners are represented; stability cells are a stratum
each), are re-run from their spec in a fresh temporary store (``harness.tasks.cell_task``, CPU,
one torch thread as in every worker), and every reported metric row is compared with the
measured one, joined on (phase, eval_set, kind, severity, metric, class, step). The rule:

- **bit-identical** when the bundle's environment matches this machine's (same torch and numpy
  versions, same platform machine and CPU model) and every sampled cell was run on the CPU with
  those versions: prunebench on CPU gives the same numbers bit for bit for the same spec;
- **within tolerance** otherwise: ``|reported - measured| <= ABS_TOLERANCE`` (0.02) for metrics
  bounded in [0, 1] or [-1, 1] (accuracies, recalls, ECE, Brier, AUROC, FPR@95, sparsities,
  unit fractions, generalization gap: ``is_bounded``), and ``<= REL_TOLERANCE`` (5%) of the
  larger magnitude for every other metric (losses, NLL, mCE, counts, FLOPs, epochs);
  NaN agrees only with NaN.

Wall-clock metrics (names starting with ``latency_``) are never compared. A row reported but
not measured, or measured but not reported, is a disagreement. ``verify`` returns 0 (accepted),
1 (refused: tampered member, inconsistent cell, or disagreeing cells, each listed) or 2
(unusable input: no such file, not a bundle, a plugin the bundle needs is not importable here).
With ``accept_into``, an accepted bundle's cells and metrics are written to
``<dir>/submissions/<bundle stem>/`` (``cells/``, ``metrics/``, ``leaderboard.json``, ``studies/``,
``verification.json``, format ``VERIFICATION_VERSION``) in one directory rename.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import platform
import shutil
import struct
import sys
import tarfile
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import pyarrow as pa
import pyarrow.parquet as pq

from core.atomic import TMP_PREFIX, atomic_write, atomic_write_bytes, atomic_write_parquet
from core.schema import CELL_SCHEMA, METRIC_SCHEMA, SCHEMA_VERSION
from core.store import part_files
from harness.storage import VERSION_META, ResultsStore, StoreError

BUNDLE_FORMAT = "prunebench-submission"
BUNDLE_VERSION = 1
VERIFICATION_VERSION = 1
SUFFIX = ".tar.gz"
MANIFEST = "manifest.json"
CELLS = "cells.parquet"
METRICS = "metrics.parquet"

KEY = ("phase", "eval_set", "kind", "severity", "metric", "class", "step")
ABS_TOLERANCE = 0.02
REL_TOLERANCE = 0.05
WALL_CLOCK_PREFIX = "latency_"
MISSING = "(none)"  # a row that one side lacks
BOUNDED_METRICS = frozenset(
    {
        "accuracy", "recall", "ece", "brier", "achieved_sparsity", "unit_sparsity", "units_fraction",
        "final_units_fraction", "acc_pre", "acc_post", "generalization_gap",
    }
)  # fmt: skip
BOUNDED_PREFIXES = ("auroc_", "fpr95_")
ENV_KEYS = ("torch_version", "numpy_version", "machine", "cpu_model")  # must match for bit-identity


class BundleError(StoreError):
    """A bundle that cannot be written or read; the message names the file."""


# -- environment ----------------------------------------------------------------------------
def cpu_model() -> str | None:
    """The CPU's model name from ``/proc/cpuinfo`` (None where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "cpu model") and value.strip():
            return value.strip()
    return None


def machine_environment() -> dict:
    """What decides whether numbers can be bit-identical: versions, platform, CPU, device."""
    from harness.environment import default_device, environment

    env = environment()
    return {
        "torch_version": env["torch_version"],
        "numpy_version": env["numpy_version"],
        "python_version": env["python_version"],
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_model": cpu_model(),
        "device": default_device(),
    }


# -- submit ---------------------------------------------------------------------------------
def _parquet_bytes(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table.replace_schema_metadata(VERSION_META), buffer)
    return buffer.getvalue()


def _sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def _bundle_stem(path: Path) -> str:
    return path.name[: -len(SUFFIX)] if path.name.endswith(SUFFIX) else path.name.split(".")[0]


def _read_store(results_dir: str) -> tuple[pa.Table, pa.Table]:
    """The store's ``ok`` cells and their metric rows, as stored (sorted by cell id)."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    store = ResultsStore(results_dir)
    if not store.exists():
        raise StoreError(f"--results {results_dir!r}: no results store there")
    store._check_version()  # a store of another schema version is not bundled
    cell_files, metric_files = part_files(store.cells_dir), part_files(store.metrics_dir)
    try:
        cells = ds.dataset(cell_files, schema=CELL_SCHEMA, format="parquet").to_table(
            filter=pc.field("status") == "ok"
        )
        cells = cells.sort_by("cell_id").replace_schema_metadata(None)
        ids = pa.array(cells["cell_id"].to_pylist(), pa.string())
        metrics = ds.dataset(metric_files, schema=METRIC_SCHEMA, format="parquet").to_table(
            filter=pc.field("cell_id").isin(ids)
        )
    except (pa.ArrowException, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StoreError(f"--results {results_dir!r}: unreadable store ({first})") from None
    if cells.num_rows == 0:
        raise StoreError(f"--results {results_dir!r}: no ok cells to submit")
    return cells, metrics.replace_schema_metadata(None)


def _presets(recorded: list[str], preset: str | None) -> list[dict]:
    """The preset file(s) the cells were run with: the one given, else each recorded one found."""
    from benchmarks.matrix import PresetError, preset_path

    if preset is not None:
        path = preset_path(preset)  # PresetError (exit 2) for an unknown one
        return [{"name": path.stem, "path": str(path), "text": path.read_text()}]
    out = []
    for name in recorded:
        try:
            path = preset_path(name)
        except PresetError:
            continue  # a preset file that is not shipped (and not given): names only
        out.append({"name": name, "path": str(path), "text": path.read_text()})
    return out


def submit(results_dir: str, out: str, preset: str | None = None) -> str:
    """Write the bundle of ``results_dir``'s ok cells to ``out`` (a ``.tar.gz``); a summary line."""
    from harness.environment import git_commit

    out_path = Path(out)
    if not out_path.name.endswith(SUFFIX) or out_path.name == SUFFIX:
        raise BundleError(
            f"--out {out!r}: a bundle is a {SUFFIX} file, e.g. {out_path.stem or 'entry'}{SUFFIX}"
        )
    cells, metrics = _read_store(results_dir)
    root = Path(results_dir)
    members: dict[str, bytes] = {CELLS: _parquet_bytes(cells), METRICS: _parquet_bytes(metrics)}
    if (root / "leaderboard.json").is_file():
        members["leaderboard.json"] = (root / "leaderboard.json").read_bytes()
    for path in sorted((root / "studies").glob("*.json")) if (root / "studies").is_dir() else ():
        if not path.name.startswith(TMP_PREFIX):
            members[f"studies/{path.name}"] = path.read_bytes()

    plugins = sorted(
        {
            (p, v)
            for p, v in zip(cells["plugin"].to_pylist(), cells["plugin_version"].to_pylist(), strict=True)
            if p
        }
    )
    recorded = sorted({p for p in cells["preset"].to_pylist() if p})
    created = datetime.now(UTC)
    manifest = {
        "format": BUNDLE_FORMAT,
        "format_version": BUNDLE_VERSION,
        "schema_version": SCHEMA_VERSION,
        "created_at": created.isoformat(),
        "environment": machine_environment(),
        "git_commit": git_commit(),
        "plugins": [{"name": p, "version": v} for p, v in plugins],
        "preset_names": recorded,
        "presets": _presets(recorded, preset),
        "counts": {"cells": cells.num_rows, "metric_rows": metrics.num_rows},
        "members": {name: {"sha256": _sha256(data), "bytes": len(data)} for name, data in members.items()},
    }
    payload = json.dumps(manifest, indent=1, sort_keys=True).encode()

    def write(handle) -> None:
        with tarfile.open(fileobj=handle, mode="w:gz") as tar:
            for name, data in [(MANIFEST, payload), *members.items()]:
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode = len(data), int(created.timestamp()), 0o644
                tar.addfile(info, io.BytesIO(data))

    try:
        atomic_write(out_path, write)
    except OSError as exc:
        raise BundleError(f"--out {out!r}: cannot write there: {exc.strerror or exc}") from None
    size = out_path.stat().st_size
    return f"bundle {out}: {cells.num_rows} cells, {metrics.num_rows} metric rows, {size} bytes"


# -- reading a bundle -----------------------------------------------------------------------
def read_bundle(bundle: str) -> tuple[dict, dict[str, bytes]]:
    """``(manifest, members)`` of a bundle; ``BundleError`` when it is not one."""
    path = Path(bundle)
    if not path.is_file():
        raise BundleError(f"bundle {bundle!r}: no such file")
    members: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for info in tar:
                if not info.isfile():
                    raise BundleError(f"bundle {bundle!r}: member {info.name!r} is not a plain file")
                if info.name in members:
                    raise BundleError(f"bundle {bundle!r}: member {info.name!r} appears twice")
                name = PurePosixPath(info.name)
                if name.is_absolute() or ".." in name.parts or "\\" in info.name:
                    raise BundleError(f"bundle {bundle!r}: member {info.name!r} is not a relative path")
                members[info.name] = tar.extractfile(info).read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BundleError(f"bundle {bundle!r}: not a readable {SUFFIX} file ({type(exc).__name__})") from None
    if MANIFEST not in members:
        raise BundleError(f"bundle {bundle!r}: no {MANIFEST}; not written by harness submit")
    try:
        manifest = json.loads(members.pop(MANIFEST))
    except ValueError:
        raise BundleError(f"bundle {bundle!r}: {MANIFEST} is not valid JSON") from None
    if not isinstance(manifest, dict):
        raise BundleError(f"bundle {bundle!r}: {MANIFEST} is not a JSON object")
    if manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(
            f"bundle {bundle!r}: {MANIFEST} has format {manifest.get('format')!r}, not {BUNDLE_FORMAT!r}"
        )
    if manifest.get("format_version") != BUNDLE_VERSION:
        raise BundleError(
            f"bundle {bundle!r}: format_version {manifest.get('format_version')!r}; "
            f"this prunebench reads version {BUNDLE_VERSION}"
        )
    if not isinstance(manifest.get("members"), dict):
        raise BundleError(f"bundle {bundle!r}: {MANIFEST} lists no members")
    return manifest, members


def integrity_problems(manifest: dict, members: dict[str, bytes]) -> list[str]:
    """Members missing, unlisted or not matching their SHA-256 in the manifest."""
    listed = manifest["members"]
    problems = [f"member {n} is listed in {MANIFEST} but missing" for n in sorted(set(listed) - set(members))]
    problems += [f"member {n} is not listed in {MANIFEST}" for n in sorted(set(members) - set(listed))]
    for name in sorted(set(listed) & set(members)):
        entry = listed[name]
        if not isinstance(entry, dict) or entry.get("sha256") != _sha256(members[name]):
            problems.append(f"member {name} does not match its SHA-256 in {MANIFEST} (tampered or damaged)")
    return problems


def _table(bundle: str, members: dict[str, bytes], name: str, schema: pa.Schema) -> pa.Table:
    try:
        table = pq.read_table(io.BytesIO(members[name]))
    except KeyError:
        raise BundleError(f"bundle {bundle!r}: no {name} member") from None
    except pa.ArrowException as exc:
        raise BundleError(
            f"bundle {bundle!r}: {name} is not readable Parquet ({type(exc).__name__})"
        ) from None
    if table.schema.remove_metadata() != schema:
        raise BundleError(
            f"bundle {bundle!r}: {name} does not have the schema version {SCHEMA_VERSION} columns"
        )
    return table.replace_schema_metadata(None)


def ensure_plugins(cells: list[dict], plugins: tuple[str, ...]) -> None:
    """Import ``plugins``; every pruner the cells name must then come from the plugin they record.

    A plugin that no ``--plugin`` and no entry point provides is tried as a module of its own
    name; ``PluginError`` names the plugin (and the pruner) that cannot be had here.
    """
    from pruners import PRUNERS
    from pruners.plugins import PluginError, load_plugins

    load_plugins(plugins)
    needed: dict[str, tuple[str, str] | None] = {}
    for cell in cells:
        spec = json.loads(cell["spec_json"])
        name = spec.get("scorer") if spec.get("cell_type") == "stability" else spec.get("pruner")
        needed[name] = (cell["plugin"], cell["plugin_version"]) if cell["plugin"] else None
    for name, want in sorted(needed.items(), key=lambda kv: str(kv[0])):
        wanted = f"plugin {want[0]}=={want[1]}" if want else "prunebench (built in)"
        if name not in PRUNERS and want and want[0].isidentifier():
            with contextlib.suppress(PluginError):  # the plugin's name as a module, e.g. a src- plugin
                load_plugins((want[0],))
        if name not in PRUNERS:
            raise PluginError(
                f"the bundle's pruner {name!r} comes from {wanted}, which is not importable here: "
                f"install it or pass --plugin MODULE"
            )
        here = PRUNERS.get(name).plugin
        if (tuple(here) if here else None) != want:
            found = f"plugin {here[0]}=={here[1]}" if here else "prunebench (built in)"
            raise PluginError(f"the bundle's pruner {name!r} comes from {wanted}; here it comes from {found}")


# -- comparison -----------------------------------------------------------------------------
def is_bounded(metric: str) -> bool:
    """Metrics in [0, 1] (or [-1, 1]) compared with an absolute tolerance."""
    return metric in BOUNDED_METRICS or metric.endswith("_accuracy") or metric.startswith(BOUNDED_PREFIXES)


def _bits(value: float | None) -> bytes | None:
    return None if value is None else struct.pack("<d", value)


def values_agree(metric: str, reported: float | None, measured: float | None, exact: bool) -> bool:
    if exact:
        return _bits(reported) == _bits(measured)
    if reported is None or measured is None:
        return reported is None and measured is None
    if math.isnan(reported) or math.isnan(measured):
        return math.isnan(reported) and math.isnan(measured)
    if is_bounded(metric):
        return abs(reported - measured) <= ABS_TOLERANCE
    return abs(reported - measured) <= REL_TOLERANCE * max(abs(reported), abs(measured))


def _keyed(rows: list[dict]) -> dict[tuple, float | None]:
    return {
        tuple(r[k] for k in KEY): r["value"] for r in rows if not r["metric"].startswith(WALL_CLOCK_PREFIX)
    }


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
    differs = [
        f"{k} {bundle_env.get(k)!r} in the bundle, {here[k]!r} here"
        for k in ENV_KEYS
        if bundle_env.get(k) != here[k]
    ]
    for cell in cells:
        if cell["device"] != "cpu":
            differs.append(f"cell {cell['cell_id']} ran on {cell['device']}")
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


def _spec_matches(cell: dict) -> bool:
    """The cell's id is the id of its ``spec_json`` (an unreadable spec does not match)."""
    from harness.tasks import spec_from_json, spec_id

    try:
        return spec_id(spec_from_json(cell["spec_json"])) == cell["cell_id"]
    except (ValueError, KeyError, TypeError):
        return False


def _label(cell: dict) -> str:
    sparsity = "-" if cell["sparsity"] is None else f"{cell['sparsity']:g}"
    return f"{cell['cell_id']} {cell['pruner']} {cell['arch']} {cell['dataset']} {sparsity}"


def verify(
    bundle: str,
    sample: int = 4,
    seed: int = 0,
    accept_into: str | None = None,
    plugins: tuple[str, ...] = (),
) -> int:
    """Check, re-run and compare a sample of ``bundle``'s cells; 0 accepted, 1 refused, 2 unusable."""
    from pruners.plugins import PluginError

    try:
        return _verify(bundle, sample, seed, accept_into, plugins)
    except (BundleError, PluginError) as exc:
        print(f"prunebench: error: {exc}", file=sys.stderr)
        return 2


def _verify(bundle: str, sample: int, seed: int, accept_into: str | None, plugins: tuple[str, ...]) -> int:
    if sample < 1:
        raise BundleError(f"--sample {sample}: must be at least 1")
    if seed < 0:
        raise BundleError(f"--seed {seed}: must be a non-negative integer")
    target = None
    if accept_into is not None:
        target = Path(accept_into) / "submissions" / _bundle_stem(Path(bundle))
        _check_writable(target.parent, "--accept-into")
    manifest, members = read_bundle(bundle)
    problems = integrity_problems(manifest, members)
    if problems:
        print(
            f"verdict: refused: {problems[0]}"
            + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else "")
        )
        return 1
    cells_table = _table(bundle, members, CELLS, CELL_SCHEMA)
    metrics_table = _table(bundle, members, METRICS, METRIC_SCHEMA)
    cells = cells_table.to_pylist()
    if not cells:
        raise BundleError(f"bundle {bundle!r}: holds no cells")
    ensure_plugins(cells, plugins)

    # every cell is what its spec says, and every metric row belongs to a cell
    problems = [
        f"MISMATCH {_label(c)}: status {c['status']!r}, not 'ok'" for c in cells if c["status"] != "ok"
    ]
    problems += [
        f"MISMATCH {_label(c)}: cell id is not the id of its spec_json" for c in cells if not _spec_matches(c)
    ]
    ids = {c["cell_id"] for c in cells}
    problems += [
        f"MISMATCH {cell_id}: metric rows of a cell the bundle does not hold"
        for cell_id in sorted(set(metrics_table["cell_id"].to_pylist()) - ids)
    ]
    if problems:
        print("\n".join(problems))
        print(f"verdict: refused: {len(problems)} inconsistencies in the bundle")
        return 1

    rows_of: dict[str, list[dict]] = {}
    for row in metrics_table.to_pylist():
        rows_of.setdefault(row["cell_id"], []).append(row)
    picked = sample_cells(cells, sample, seed)
    exact, why = comparison_rule(manifest.get("environment", {}), picked)
    print(
        f"bundle {Path(bundle).name}: {len(cells)} cells, {metrics_table.num_rows} metric rows "
        f"(commit {str(manifest.get('git_commit'))[:12]}, created {manifest.get('created_at')}); "
        f"re-running {len(picked)} (seed {seed})"
    )
    print(f"rule: {why}; {WALL_CLOCK_PREFIX}* metrics not compared")
    results, started = [], time.perf_counter()
    for cell, (status, compared, diffs, seconds) in zip(
        picked, _rerun(picked, rows_of, exact, plugins), strict=True
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
    seconds = time.perf_counter() - started
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
                "sha256": _sha256(Path(bundle).read_bytes()),
                **{k: manifest.get(k) for k in ("format_version", "created_at", "git_commit", "environment",
                                                "plugins", "preset_names")},
            },
            "cells": len(cells),
            "metric_rows": metrics_table.num_rows,
            "sample": {"requested": sample, "seed": seed, "cell_ids": [c["cell_id"] for c in picked]},
            "rule": {
                "mode": "bit_identical" if exact else "tolerance",
                "description": why,
                "abs_tolerance": None if exact else ABS_TOLERANCE,
                "rel_tolerance": None if exact else REL_TOLERANCE,
                "not_compared": f"{WALL_CLOCK_PREFIX}*",
            },
            "result": "accepted",
            "per_cell": results,
            "seconds": round(seconds, 1),
            "verified_at": datetime.now(UTC).isoformat(),
            "verifier_environment": {**machine_environment(), "git_commit": _git_commit()},
        }  # fmt: skip
        _write_entry(target, cells_table, metrics_table, members, record)
        where = f"; entry written to {target}"
    mode = "bit-identical" if exact else "within tolerance"
    print(f"verdict: accepted: {len(results)} of {len(results)} sampled cells agree ({mode}){where}")
    return 0


def _git_commit() -> str:
    from harness.environment import git_commit

    return git_commit()


def _rerun(picked: list[dict], rows_of: dict, exact: bool, plugins: tuple[str, ...]):
    """Yield ``(status, rows compared, disagreements, seconds)`` per picked cell, re-run on the CPU."""
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
                outcome = cell_task(cell["spec_json"], tmp, "verify", "cpu", True, plugins)
                if outcome.status != "ok":
                    yield f"{outcome.status}: {outcome.reason}", 0, [], outcome.seconds
                    continue
                measured = pq.read_table(store.metrics_dir / f"{outcome.cell_id}.parquet").to_pylist()
                compared, diffs = compare_rows(rows_of.get(cell["cell_id"], []), measured, exact)
                yield "ok", compared, diffs, outcome.seconds
    finally:
        torch.set_num_threads(threads)


def _write_entry(
    target: Path, cells: pa.Table, metrics: pa.Table, members: dict[str, bytes], record: dict
) -> None:
    """The accepted entry as a store folder, built under a hidden name and renamed into place."""
    import pyarrow.compute as pc

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{target.name}-", dir=target.parent))
    try:
        for cell_id in cells["cell_id"].to_pylist():
            atomic_write_parquet(
                staging / "cells" / f"{cell_id}.parquet",
                cells.filter(pc.field("cell_id") == cell_id),
                VERSION_META,
            )
            atomic_write_parquet(
                staging / "metrics" / f"{cell_id}.parquet",
                metrics.filter(pc.field("cell_id") == cell_id),
                VERSION_META,
            )
        for name, data in members.items():
            if name == "leaderboard.json" or name.startswith("studies/"):
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
