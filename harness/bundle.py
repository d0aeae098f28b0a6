"""The submission bundle: its format, its limits, and the one reader of an untrusted bundle.

Bundle (``<name>.tar.gz``, format ``BUNDLE_FORMAT`` version ``BUNDLE_VERSION``), these members
and no others::

    manifest.json          format, created_at, submitting machine's environment (torch/numpy/python
                           versions, platform machine/processor, CPU model, device), git commit,
                           plugins (name, version) seen in the cells, preset names recorded in the
                           cells and the preset file's text, and the SHA-256 and size of every
                           other member
    cells.parquet          the store's committed ``ok`` cells (``core.schema.CELL_SCHEMA``)
    metrics.parquet        their metric rows (``METRIC_SCHEMA``)
    leaderboard.json       the store's leaderboard manifest, when present (a JSON object)
    studies/<name>.json    the store's study manifests, when present (JSON objects)

A bundle comes from a stranger: ``read_bundle`` never imports, unpickles or executes anything
in it (JSON and Parquet are parsed as data; pyarrow has no pickle-based extension type since
version 15), and refuses, before reading any member whole, what exceeds ``LIMITS``: the file's
size, the number of members, each member's size (read in chunks with a cap, never trusting the
size its header states) and their total. Every refusal is one line (``BundleError``).
"""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from harness.storage import StoreError

BUNDLE_FORMAT = "prunebench-submission"
BUNDLE_VERSION = 1
SUFFIX = ".tar.gz"
MANIFEST = "manifest.json"
CELLS = "cells.parquet"
METRICS = "metrics.parquet"
LEADERBOARD = "leaderboard.json"
STUDY_MEMBER = re.compile(r"^studies/[a-z0-9][a-z0-9_]{0,63}\.json$")
MiB = 1 << 20
CHUNK = MiB


@dataclass(frozen=True)
class Limits:
    """What ``harness verify`` accepts at most (the README's "Submissions" lists them)."""

    bundle_bytes: int = 256 * MiB  # the .tar.gz file
    members: int = 40  # manifest, cells, metrics, leaderboard and up to 36 study manifests
    json_member_bytes: int = 8 * MiB  # manifest.json, leaderboard.json, each studies/*.json
    cells_bytes: int = 64 * MiB  # cells.parquet
    metrics_bytes: int = 512 * MiB  # metrics.parquet
    total_bytes: int = 768 * MiB  # every member, uncompressed
    cells: int = 20_000  # cells in the bundle
    metric_rows: int = 40_000_000  # metric rows in the bundle
    sample: int = 16  # cells re-run
    cell_epochs: int = 200  # training epochs one cell costs (dense parent + pruning + retraining)
    rerun_epochs: int = 1_000  # the sample's epochs, all re-run cells together
    cell_seconds: int = 3_600  # wall-clock seconds one re-run cell may take
    set_size: int = 20_000  # examples per shift / OOD set
    score_examples: int = 65_536  # score_batches x score_batch_size
    min_batch_size: int = 8  # training minibatch


LIMITS = Limits()


class BundleError(StoreError):
    """A bundle that cannot be written, read or accepted; one line naming the file and why."""


def member_limit(name: str, limits: Limits = LIMITS) -> int | None:
    """The size cap of a member the format defines; None for a name the format does not define."""
    if name in (MANIFEST, LEADERBOARD) or STUDY_MEMBER.match(name):
        return limits.json_member_bytes
    return {CELLS: limits.cells_bytes, METRICS: limits.metrics_bytes}.get(name)


def bundle_stem(path: Path) -> str:
    return path.name[: -len(SUFFIX)] if path.name.endswith(SUFFIX) else path.name.split(".")[0]


def _read_capped(handle, cap: int, bundle: str, name: str) -> bytes:
    """The member's bytes, read in chunks; over ``cap`` (whatever its header said) is a refusal."""
    parts, size = [], 0
    while chunk := handle.read(CHUNK):
        size += len(chunk)
        if size > cap:
            raise BundleError(f"bundle {bundle!r}: member {name!r} is over its limit of {cap // MiB} MiB")
        parts.append(chunk)
    return b"".join(parts)


def read_members(bundle: str, limits: Limits = LIMITS) -> dict[str, bytes]:
    """Every member of the bundle, each checked against the format and the limits before it is read."""
    path = Path(bundle)
    if not path.is_file():
        raise BundleError(f"bundle {bundle!r}: no such file")
    size = path.stat().st_size
    if size > limits.bundle_bytes:
        raise BundleError(
            f"bundle {bundle!r}: {size} bytes, over the limit of {limits.bundle_bytes // MiB} MiB"
        )
    members: dict[str, bytes] = {}
    total = 0
    try:
        with tarfile.open(path, "r:gz") as tar:
            for count, info in enumerate(tar, start=1):
                if count > limits.members:
                    raise BundleError(f"bundle {bundle!r}: more than {limits.members} members")
                name = info.name
                pure = PurePosixPath(name)
                if pure.is_absolute() or ".." in pure.parts or "\\" in name:
                    raise BundleError(f"bundle {bundle!r}: member {name!r} is not a relative path")
                if not info.isfile():
                    raise BundleError(f"bundle {bundle!r}: member {name!r} is not a plain file")
                if name in members:
                    raise BundleError(f"bundle {bundle!r}: member {name!r} appears twice")
                cap = member_limit(name, limits)
                if cap is None:
                    raise BundleError(
                        f"bundle {bundle!r}: member {name!r} is not part of the bundle format (valid: "
                        f"{MANIFEST}, {CELLS}, {METRICS}, {LEADERBOARD}, studies/NAME.json)"
                    )
                if info.size > cap or total + info.size > limits.total_bytes:
                    raise BundleError(
                        f"bundle {bundle!r}: member {name!r} states {info.size} bytes, over its limit of "
                        f"{cap // MiB} MiB (or the total of {limits.total_bytes // MiB} MiB)"
                    )
                data = _read_capped(tar.extractfile(info), min(cap, limits.total_bytes - total), bundle, name)
                total += len(data)
                members[name] = data
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BundleError(f"bundle {bundle!r}: not a readable {SUFFIX} file ({type(exc).__name__})") from None
    return members


def parse_json_object(bundle: str, name: str, payload: bytes) -> dict:
    try:
        value = json.loads(payload)
    except (ValueError, RecursionError):
        raise BundleError(f"bundle {bundle!r}: {name} is not valid JSON") from None
    if not isinstance(value, dict):
        raise BundleError(f"bundle {bundle!r}: {name} is not a JSON object")
    return value


def read_bundle(bundle: str, limits: Limits = LIMITS) -> tuple[dict, dict[str, bytes]]:
    """``(manifest, members)`` of a bundle (the manifest removed from the members); ``BundleError``
    when it is not one, holds a member the format does not define or exceeds a limit."""
    members = read_members(bundle, limits)
    if MANIFEST not in members:
        raise BundleError(f"bundle {bundle!r}: no {MANIFEST}; not written by harness submit")
    manifest = parse_json_object(bundle, MANIFEST, members.pop(MANIFEST))
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
    for name, payload in members.items():
        if name.endswith(".json"):
            parse_json_object(bundle, name, payload)
    return manifest, members


def integrity_problems(manifest: dict, members: dict[str, bytes]) -> list[str]:
    """Members missing, unlisted or not matching their SHA-256 in the manifest."""
    listed = manifest["members"]
    problems = [f"member {n} is listed in {MANIFEST} but missing" for n in sorted(set(listed) - set(members))]
    problems += [f"member {n} is not listed in {MANIFEST}" for n in sorted(set(members) - set(listed))]
    for name in sorted(set(listed) & set(members)):
        entry = listed[name]
        if not isinstance(entry, dict) or entry.get("sha256") != hashlib.sha256(members[name]).hexdigest():
            problems.append(f"member {name} does not match its SHA-256 in {MANIFEST} (tampered or damaged)")
    return problems
