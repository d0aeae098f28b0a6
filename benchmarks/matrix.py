"""Matrix presets: TOML data files in ``benchmarks/presets/``, validated on load.

A preset names the axes of the matrix (datasets, archs, pruners as globs over the registry,
sparsities, seeds, retraining recipes) and the training recipes; ``expand`` turns it into
cell specs, the cartesian product of the axes. An error names the file, the line and the
key, and what would be valid.
"""

from __future__ import annotations

import fnmatch
import itertools
import re
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from benchmarks.archs import ARCHS
from benchmarks.datasets import DATASETS
from benchmarks.registry import Registry
from benchmarks.spec import RETRAIN_RECIPES, CellSpec, RetrainConfig
from benchmarks.training import TrainConfig

PRESET_DIR = Path(__file__).parent / "presets"
AXES = ("datasets", "archs", "pruners", "sparsities", "seeds", "retrain")
TOP_KEYS = {"description", *AXES, "train", "retrain_config", "stability", "override"}
OVERRIDE_AXES = ("sparsities", "seeds", "retrain")
OVERRIDE_KEYS = {"pruners", "timing", *OVERRIDE_AXES, "train", "retrain_config"}


class PresetError(ValueError):
    """A preset file that cannot be used; the message names file, line and key."""


@dataclass(frozen=True)
class Preset:
    name: str
    path: Path
    description: str
    datasets: tuple[str, ...]
    archs: tuple[str, ...]
    pruners: tuple[str, ...]
    sparsities: tuple[float, ...]
    seeds: tuple[int, ...]
    retrain: tuple[str, ...]
    train: TrainConfig
    retrain_config: RetrainConfig
    stability: tuple = ()
    overrides: tuple[Override, ...] = ()

    def axes_for(self, pruner: str) -> Override:
        """The sparsities, seeds, retrain recipes and recipes of one pruner: those of the first
        ``[[override]]`` that selects it, else the top-level ones."""
        for o in self.overrides:
            if pruner in o.selected:
                return o
        return Override((), self.sparsities, self.seeds, self.retrain, self.train, self.retrain_config)

    def expand(self) -> list:
        """Every cell: the pruning matrix, then the stability study's runs (if any)."""
        prune = []
        for ds, arch, pr in itertools.product(self.datasets, self.archs, self.pruners):
            a = self.axes_for(pr)
            prune += [
                CellSpec(arch, ds, pr, sp, seed, rt, train=a.train, retrain_config=a.retrain_config)
                for sp, seed, rt in itertools.product(a.sparsities, a.seeds, a.retrain)
            ]
        return [*prune, *self.stability]


@dataclass(frozen=True)
class Override:
    """Axes for the pruners one ``[[override]]`` table selects (by ``pruners`` globs or ``timing``).

    ``sparsities``, ``seeds`` and ``retrain`` replace the top-level axes; ``train`` and
    ``retrain_config`` are merged key by key over the top-level tables (a different dense
    recipe means a different dense parent: the cells' own ``dense`` rows come from it).
    """

    selected: tuple[str, ...]
    sparsities: tuple[float, ...]
    seeds: tuple[int, ...]
    retrain: tuple[str, ...]
    train: TrainConfig
    retrain_config: RetrainConfig


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def preset_path(name: str) -> Path:
    path = Path(name)
    if path.suffix == ".toml" and path.exists():
        return path
    candidate = PRESET_DIR / f"{name}.toml"
    if not candidate.exists():
        import difflib

        close = difflib.get_close_matches(name, preset_names(), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise PresetError(f"unknown preset {name!r}{hint} valid: {', '.join(preset_names())}")
    return candidate


def _line_of(text: str, key: str, section: str | None = None) -> int:
    lines = text.splitlines()
    start = 0
    if section is not None:
        for i, line in enumerate(lines):
            if re.match(rf"^\s*\[{re.escape(section)}\]\s*$", line):
                start = i
                break
    for i in range(start, len(lines)):
        if re.match(rf"^\s*{re.escape(key)}\s*=", lines[i]) or re.match(
            rf"^\s*\[{re.escape(key)}\]", lines[i]
        ):
            return i + 1
    return 1


def load_preset(name: str) -> Preset:
    path = preset_path(name)
    text = path.read_text()
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"at line (\d+)", str(exc))
        line = int(found.group(1)) if found else max(1, len(text.splitlines()))
        raise PresetError(f"{path}:{line}: malformed TOML: {exc}") from None

    def fail(key: str, message: str, section: str | None = None) -> PresetError:
        where = f"{section}.{key}" if section else key
        return PresetError(f"{path}:{_line_of(text, key, section)}: key {where!r}: {message}")

    for key in raw:
        if key not in TOP_KEYS:
            raise fail(key, f"unknown key; valid: {', '.join(sorted(TOP_KEYS))}")
    for key in AXES:
        if key not in raw:
            raise PresetError(f"{path}:1: key {key!r} is missing")
        if not isinstance(raw[key], list) or not raw[key]:
            raise fail(key, "must be a non-empty list")

    def names(key: str, registry: Registry) -> tuple[str, ...]:
        out: list[str] = []
        for pattern in raw[key]:
            if not isinstance(pattern, str):
                raise fail(key, f"{pattern!r} is not a string")
            matched = registry.names(pattern)
            if not matched:
                raise fail(key, registry.unknown_message(pattern))
            out += [m for m in matched if m not in out]
        return tuple(out)

    from pruners import PRUNERS

    sparsities = []
    for s in raw["sparsities"]:
        if isinstance(s, bool) or not isinstance(s, int | float) or not 0.0 < s < 1.0:
            raise fail("sparsities", f"{s!r} is not a number in the open interval (0, 1)")
        sparsities.append(float(s))
    seeds = raw["seeds"]
    if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise fail("seeds", "every seed must be a non-negative integer")
    for r in raw["retrain"]:
        if r not in RETRAIN_RECIPES:
            raise fail("retrain", f"{r!r} is not one of: {', '.join(RETRAIN_RECIPES)}")
    train = _config(TrainConfig, raw.get("train", {}), "train", fail)
    retrain_config = _config(RetrainConfig, raw.get("retrain_config", {}), "retrain_config", fail)
    stability: tuple = ()
    if "stability" in raw:
        from benchmarks.stability import expand_stability

        if not isinstance(raw["stability"], dict):
            raise fail("stability", "must be a table")
        try:
            stability = tuple(expand_stability(raw["stability"]))
        except (ValueError, KeyError) as exc:
            message = str(exc).strip("'\"")
            quoted = [q for q in re.findall(r"'([^']+)'", message) if q in raw["stability"]]
            mentioned = [k for k in raw["stability"] if re.search(rf"\b{re.escape(k)}\b", message)]
            key = (quoted or mentioned or ["stability"])[0]
            raise fail(key, message, "stability" if key != "stability" else None) from None
    return Preset(
        name=path.stem,
        path=path,
        description=str(raw.get("description", "")),
        datasets=names("datasets", DATASETS),
        archs=names("archs", ARCHS),
        pruners=names("pruners", PRUNERS),
        sparsities=tuple(sparsities),
        seeds=tuple(seeds),
        retrain=tuple(raw["retrain"]),
        train=train,
        retrain_config=retrain_config,
        stability=stability,
        overrides=_overrides(raw, text, path, train, retrain_config),
    )


def _config(cls: type, table: object, section: str, fail) -> object:
    if not isinstance(table, dict):
        raise fail(section, "must be a table")
    valid = {f.name: f.type for f in fields(cls)}
    for key, value in table.items():
        if key not in valid:
            raise fail(key, f"unknown key; valid: {', '.join(valid)}", section)
        expected = {"int": int, "float": (int, float), "str": str}[valid[key]]
        if isinstance(value, bool) or not isinstance(value, expected):
            raise fail(key, f"{value!r} is not of type {valid[key]}", section)
    try:
        return cls(**table)
    except ValueError as exc:
        raise fail(next(iter(table), section), str(exc), section) from None


def describe(name: str) -> str:
    try:
        return load_preset(name).description
    except PresetError as exc:
        return f"(invalid: {exc})"


def apply_filters(cells: list[CellSpec], filters: list[str]) -> list[CellSpec]:
    """Keep cells whose fields match every ``KEY=GLOB`` (``pruner=*magnitude``, ``seed=0``)."""
    valid = ("arch", "dataset", "pruner", "sparsity", "seed", "retrain", "study")
    parsed = []
    for f in filters:
        key, sep, pattern = f.partition("=")
        if not sep or key not in valid:
            raise PresetError(f"--filter {f!r}: expected KEY=GLOB with KEY one of: {', '.join(valid)}")
        parsed.append((key, pattern))
    return [c for c in cells if all(fnmatch.fnmatchcase(str(_filter_field(c, k)), p) for k, p in parsed)]


STABILITY_FILTER_FIELDS = {"pruner": "target", "sparsity": "final_fraction"}


def _filter_field(cell, key: str):
    """A cell's value for ``--filter``; stability runs answer ``pruner`` with their target and
    ``sparsity`` with their final fraction, as the cells table stores them."""
    if getattr(cell, "study", "prune") == "stability":
        key = STABILITY_FILTER_FIELDS.get(key, key)
    return getattr(cell, key, None)


def _overrides(raw: dict, text: str, path: Path, train: TrainConfig, retrain_config: RetrainConfig) -> tuple:
    """Validate the ``[[override]]`` tables (per-pruner or per-timing axes); see ``Override``."""
    from dataclasses import asdict

    from pruners import PRUNERS
    from pruners.base import TIMINGS

    tables = raw.get("override", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise PresetError(f"{path}:{_line_of(text, 'override')}: key 'override': must be [[override]] tables")
    headers = [i + 1 for i, line in enumerate(text.splitlines()) if re.match(r"^\s*\[\[override\]\]", line)]
    out = []
    for n, table in enumerate(tables):
        start = headers[n] if n < len(headers) else 1

        def fail(key: str, message: str, n=n, start=start) -> PresetError:
            lines = text.splitlines()
            line = next(
                (i + 1 for i in range(start - 1, len(lines)) if re.match(rf"^\s*{key}\s*=", lines[i])), start
            )
            return PresetError(f"{path}:{line}: key 'override[{n}].{key}': {message}")

        for key in table:
            if key not in OVERRIDE_KEYS:
                raise fail(key, f"unknown key; valid: {', '.join(sorted(OVERRIDE_KEYS))}")
        if ("pruners" in table) == ("timing" in table):
            raise PresetError(f"{path}:{start}: key 'override[{n}]': give exactly one of 'pruners', 'timing'")
        if "timing" in table:
            if table["timing"] not in TIMINGS:
                raise fail("timing", f"{table['timing']!r} is not one of: {', '.join(TIMINGS)}")
            selected = tuple(p for p in PRUNERS.names() if PRUNERS.get(p).timing == table["timing"])
        else:
            if not isinstance(table["pruners"], list) or not table["pruners"]:
                raise fail("pruners", "must be a non-empty list of globs")
            selected = ()
            for pattern in table["pruners"]:
                matched = PRUNERS.names(pattern) if isinstance(pattern, str) else []
                if not matched:
                    raise fail("pruners", PRUNERS.unknown_message(str(pattern)))
                selected += tuple(m for m in matched if m not in selected)
        sparsities = table.get("sparsities", raw["sparsities"])
        if (
            not isinstance(sparsities, list)
            or not sparsities
            or not all(
                isinstance(s, int | float) and not isinstance(s, bool) and 0.0 < s < 1.0 for s in sparsities
            )
        ):
            raise fail("sparsities", "must be a non-empty list of numbers in the open interval (0, 1)")
        sparsities = tuple(float(s) for s in sparsities)
        seeds = table.get("seeds", raw["seeds"])
        if (
            not isinstance(seeds, list)
            or not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
        ):
            raise fail("seeds", "must be a non-empty list of non-negative integers")
        seeds = tuple(seeds)
        recipes = table.get("retrain", raw["retrain"])
        if not isinstance(recipes, list) or not recipes or not all(r in RETRAIN_RECIPES for r in recipes):
            raise fail("retrain", f"must be a non-empty list of: {', '.join(RETRAIN_RECIPES)}")
        tables_ = {}
        for key, base in (("train", train), ("retrain_config", retrain_config)):
            part = table.get(key, {})
            if not isinstance(part, dict):
                raise fail(key, "must be a table")
            valid = {f.name: f.type for f in fields(type(base))}
            for k, v in part.items():
                expected = {"int": int, "float": (int, float), "str": str}.get(valid.get(k, ""), ())
                if k not in valid or isinstance(v, bool) or not isinstance(v, expected):
                    raise fail(key, f"{k} = {v!r}: valid keys and types: {valid}")
            try:
                tables_[key] = type(base)(**{**asdict(base), **part})
            except ValueError as exc:
                raise fail(key, str(exc)) from None
        out.append(
            Override(selected, sparsities, seeds, tuple(recipes), tables_["train"], tables_["retrain_config"])
        )
    return tuple(out)
