"""Matrix presets and designs: TOML data files, validated on load, expanded into cell specs.

A *design* names the axes of a matrix (datasets, archs, pruners as globs over the registry,
sparsities, seeds, retraining recipes, mask controls) and the recipes and settings every
cell carries (``[train]``, ``[retrain_config]``, ``[eval]``, per-pruner hyperparameters);
``[[override]]`` tables give some pruners other axes (the first matching table applies).
``expand`` is the cartesian product. A *preset* (``benchmarks/presets/*.toml``) is a design
plus its description, the plugins it needs and the studies it runs with it
(``benchmarks.designs``); its own cells are the leaderboard, and its top-level
``sparsities`` are the leaderboard's common grid. An error names the file, the line and the
key, and what would be valid.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from benchmarks.archs import ARCHS
from benchmarks.datasets import DATASETS
from core.config import ConfigError, config_dict, make_config
from core.registry import Registry, unknown_name_message
from core.spec import (
    MASK_CONTROLS,
    MAX_SEED,
    RETRAIN_RECIPES,
    CellSpec,
    EvalConfig,
    RetrainConfig,
    TrainConfig,
)

PRESET_DIR = Path(__file__).parent / "presets"
STUDY_DIR = Path(__file__).parent / "studies"  # the study files (``benchmarks.designs``) presets name
AXES = ("datasets", "archs", "pruners", "sparsities", "seeds", "retrain")
DESIGN_KEYS = {*AXES, "controls", "train", "retrain_config", "eval", "pruner_config", "override"}
PRESET_KEYS = {"description", "plugins", "studies", *DESIGN_KEYS}
OVERRIDE_KEYS = {
    "pruners",
    "timing",
    "sparsities",
    "seeds",
    "retrain",
    "controls",
    "train",
    "retrain_config",
    "eval",
    "pruner_config",
}
MAX_SEEDS = 10_000  # seeds per design: a count beyond it is a typo, not a plan


class PresetError(ValueError):
    """A preset, study or filter that cannot be used; the message names file, line and key."""


@dataclass(frozen=True)
class Axes:
    """Everything a pruner's cells vary over or carry, after ``[[override]]`` tables apply."""

    sparsities: tuple[float, ...]
    seeds: tuple[int, ...]
    retrain: tuple[str, ...]
    train: TrainConfig
    retrain_config: RetrainConfig
    eval: EvalConfig
    controls: tuple[str, ...] = ("none",)
    pruner_config: dict = field(default_factory=dict)  # pruner name -> {key: value}


@dataclass(frozen=True)
class Override:
    """The axes of the pruners one ``[[override]]`` table selects (by ``pruners`` globs or
    ``timing``): ``sparsities``, ``seeds``, ``retrain`` and ``controls`` replace the design's;
    ``train``, ``retrain_config``, ``eval`` and ``pruner_config`` are merged key by key over
    the design's tables (a different dense recipe means a different dense parent)."""

    selected: tuple[str, ...]
    axes: Axes


@dataclass(frozen=True)
class Design:
    datasets: tuple[str, ...]
    archs: tuple[str, ...]
    pruners: tuple[str, ...]
    axes: Axes
    overrides: tuple[Override, ...] = ()

    def axes_for(self, pruner: str) -> Axes:
        for o in self.overrides:
            if pruner in o.selected:
                return o.axes
        return self.axes

    def expand(self) -> list[CellSpec]:
        from pruners import PRUNERS, make_pruner_config

        cells = []
        for ds, arch, pr in itertools.product(self.datasets, self.archs, self.pruners):
            a = self.axes_for(pr)
            config = config_dict(make_pruner_config(pr, a.pruner_config.get(pr, {})))
            plugin = PRUNERS.get(pr).plugin
            plugin_id = f"{plugin[0]}=={plugin[1]}" if plugin else None
            ev = resolved_eval(a.eval, ds)
            for sp, seed, rt, control in itertools.product(a.sparsities, a.seeds, a.retrain, a.controls):
                cells.append(
                    CellSpec(
                        arch,
                        ds,
                        pr,
                        sp,
                        seed,
                        rt,
                        train=a.train,
                        retrain_config=a.retrain_config,
                        pruner_config=config,
                        eval=ev,
                        control=control,
                        plugin=plugin_id,
                    )
                )
        return cells


def resolved_eval(config: EvalConfig, dataset: str) -> EvalConfig:
    """The evaluation config with the dataset's declared set sizes filled in (``ShiftProfile``, so
    they enter the cell id); sizes are 0 when only the clean splits are evaluated."""
    if config.sets == "clean":
        return replace(config, shift_set_size=0, ood_set_size=0)
    declared = DATASETS.get(dataset).shifts
    return replace(
        config,
        shift_set_size=config.shift_set_size or declared.shift_size,
        ood_set_size=config.ood_set_size or declared.ood_size,
    )


@dataclass(frozen=True)
class Preset:
    name: str
    path: Path
    description: str
    design: Design
    plugins: tuple[str, ...] = ()
    studies: tuple[str, ...] = ()

    @property
    def grid(self) -> tuple[float, ...]:
        """The leaderboard's common sparsities: the preset's top-level ``sparsities``."""
        return self.design.axes.sparsities

    def expand(self) -> list[CellSpec]:
        """The leaderboard's cells (the studies' cells come from ``benchmarks.designs``)."""
        return self.design.expand()


# -- reading TOML with located errors -----------------------------------------------------------


def line_of(text: str, key: str, section: str | None = None) -> int:
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


def read_toml(path: Path) -> tuple[dict, str]:
    try:
        text = path.read_bytes().decode("utf-8")
    except IsADirectoryError:
        raise PresetError(f"{path}: is a folder, not a TOML file") from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise PresetError(f"{path}:{line}: not UTF-8 text (byte {exc.start}); TOML files are UTF-8") from None
    except OSError as exc:
        raise PresetError(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"at line (\d+)", str(exc))
        line = int(found.group(1)) if found else max(1, len(text.splitlines()))
        raise PresetError(f"{path}:{line}: malformed TOML: {exc}") from None


class Located:
    """Builds ``PresetError``s that name the file, the line and the (dotted) key."""

    def __init__(self, path: Path, text: str, prefix: str = "") -> None:
        self.path, self.text, self.prefix = path, text, prefix

    def error(
        self, key: str, message: str, section: str | None = None, start_line: int | None = None
    ) -> PresetError:
        where = ".".join(p for p in (self.prefix, section, key) if p)
        line = self._line(key, section, start_line)
        return PresetError(f"{self.path}:{line}: key {where!r}: {message}")

    def _line(self, key: str, section: str | None, start_line: int | None) -> int:
        if start_line is None:
            return line_of(self.text, key, section)
        lines = self.text.splitlines()
        found = (
            i + 1
            for i in range(start_line - 1, len(lines))
            if re.match(rf"^\s*{re.escape(key)}\s*=", lines[i])
        )
        return next(found, start_line)


def _names(values, key: str, registry: Registry, at: Located) -> tuple[str, ...]:
    if not isinstance(values, list) or not values:
        raise at.error(key, "must be a non-empty list")
    out: list[str] = []
    for i, pattern in enumerate(values):
        if not isinstance(pattern, str):
            raise at.error(key, f"{pattern!r} is not a string")
        if pattern in values[:i]:
            raise at.error(key, f"{pattern!r} is listed twice")
        matched = registry.names(pattern)
        if not matched:
            raise at.error(key, registry.unknown_message(pattern))
        out += [m for m in matched if m not in out]
    return tuple(out)


def _sparsities(values, key: str, at: Located, unpruned: bool = False, **where) -> tuple[float, ...]:
    """Sparsities in (0, 1); a study design may also name 0 (``unpruned``: the t = 1 control,
    the same pipeline without pruning)."""
    low = 0.0 if unpruned else None
    interval = "[0, 1)" if unpruned else "the open interval (0, 1)"
    if not isinstance(values, list) or not values:
        raise at.error(key, f"must be a non-empty list of numbers in {interval}", **where)
    for s in values:
        if (
            isinstance(s, bool)
            or not isinstance(s, int | float)
            or not (0.0 < s < 1.0 or (low is not None and s == low))
        ):
            raise at.error(key, f"{s!r} is not a number in {interval}", **where)
    return _unique([float(s) for s in values], key, at, **where)


def _unique(values: list, key: str, at: Located, **where) -> tuple:
    """``values`` as a tuple; a value listed twice is an error (never silently one cell)."""
    seen = set()
    for v in values:
        if v in seen:
            raise at.error(key, f"{v!r} is listed twice", **where)
        seen.add(v)
    return tuple(values)


def seed_list(values, key: str, at: Located, **where) -> tuple[int, ...]:
    """``seeds = [0, 1, 2]`` or ``seeds = 30`` (seeds 0..29): at most ``MAX_SEEDS`` seeds, each
    at most ``MAX_SEED``."""
    if isinstance(values, int) and not isinstance(values, bool):
        if 1 <= values <= MAX_SEEDS:
            return tuple(range(values))
        raise at.error(key, f"{values!r} is not a seed count from 1 to {MAX_SEEDS}", **where)
    if isinstance(values, list) and 0 < len(values) <= MAX_SEEDS:
        for s in values:
            if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= MAX_SEED:
                raise at.error(key, f"{s!r} is not a seed: an integer from 0 to {MAX_SEED}", **where)
        return _unique(list(values), key, at, **where)
    raise at.error(
        key, f"must be a seed count (1 to {MAX_SEEDS}) or a list of 1 to {MAX_SEEDS} seeds", **where
    )


def _choices(values, key: str, valid: tuple[str, ...], at: Located, **where) -> tuple[str, ...]:
    if not isinstance(values, list) or not values or any(v not in valid for v in values):
        raise at.error(key, f"must be a non-empty list of: {', '.join(valid)}", **where)
    return _unique(list(values), key, at, **where)


def _config(cls: type, base, table, key: str, at: Located, **where):
    if not isinstance(table, dict):
        raise at.error(key, "must be a table", **where)
    try:
        return make_config(cls, {**(asdict(base) if base is not None else {}), **table}, key)
    except ConfigError as exc:
        head, _, message = str(exc).partition(": ")
        sub = head.split(".", 1)[1] if "." in head else None
        if not where and sub in table:  # a top-level table: name the key and its line in the table
            raise at.error(sub, message, section=key) from None
        raise at.error(key, str(exc), **where) from None


def _pruner_configs(table, base: dict, at: Located, **where) -> dict:
    """``pruner_config = {synflow = {rounds = 10}}`` (or, in an override, ``{rounds = 10}`` for
    every pruner it selects: the caller passes ``selected``)."""
    from pruners import PRUNERS, make_pruner_config

    if not isinstance(table, dict):
        raise at.error("pruner_config", "must be a table of pruner name -> {hyperparameter = value}", **where)
    out = {k: dict(v) for k, v in base.items()}
    for name, values in table.items():
        if name not in PRUNERS:
            raise at.error("pruner_config", PRUNERS.unknown_message(name), **where)
        if not isinstance(values, dict):
            raise at.error("pruner_config", f"{name} = {values!r} is not a table", **where)
        merged = {**out.get(name, {}), **values}
        try:
            make_pruner_config(name, merged)
        except ConfigError as exc:
            raise at.error("pruner_config", str(exc), **where) from None
        out[name] = merged
    return out


def _controls(values, pruners: tuple[str, ...], at: Located, **where) -> tuple[str, ...]:
    """The mask controls (``benchmarks.controls``), each accepted by every pruner it applies to."""
    from benchmarks.controls import CONTROLS
    from pruners import PRUNERS

    controls = _choices(values, "controls", MASK_CONTROLS, at, **where)
    for p in pruners:
        for control in controls:
            problem = CONTROLS.get(control).refuses(PRUNERS.get(p))
            if problem:
                raise at.error("controls", problem, **where)
    return controls


def parse_design(raw: dict, at: Located, allowed: set[str] = DESIGN_KEYS, study: bool = False) -> Design:
    """Validate a design table (a preset's top level, or a study's ``[design]``: ``study`` allows
    sparsity 0, the unpruned control)."""
    from pruners import PRUNERS
    from pruners.base import TIMINGS

    for key in raw:
        if key not in allowed:
            raise at.error(key, f"unknown key; valid: {', '.join(sorted(allowed))}")
    for key in AXES:
        if key not in raw:
            raise PresetError(f"{at.path}:1: key {'.'.join(p for p in (at.prefix, key) if p)!r} is missing")
    pruners = _names(raw["pruners"], "pruners", PRUNERS, at)
    train = _config(TrainConfig, None, raw.get("train", {}), "train", at)
    retrain_config = _config(RetrainConfig, None, raw.get("retrain_config", {}), "retrain_config", at)
    evaluation = _config(EvalConfig, None, raw.get("eval", {}), "eval", at)
    base = Axes(
        sparsities=_sparsities(raw["sparsities"], "sparsities", at, unpruned=study),
        seeds=seed_list(raw["seeds"], "seeds", at),
        retrain=_choices(raw["retrain"], "retrain", RETRAIN_RECIPES, at),
        train=train,
        retrain_config=retrain_config,
        eval=evaluation,
        controls=("none",),
        pruner_config=_pruner_configs(raw.get("pruner_config", {}), {}, at),
    )
    if "controls" in raw:
        base = replace(base, controls=_controls(raw["controls"], pruners, at))
    tables = raw.get("override", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise at.error("override", "must be [[override]] tables")
    headers = [
        i + 1
        for i, line in enumerate(at.text.splitlines())
        if re.match(r"^\s*\[\[(design\.)?override\]\]", line)
    ]
    overrides = []
    for n, table in enumerate(tables):
        start = headers[n] if n < len(headers) else 1
        section = f"override[{n}]"
        where = {"section": section, "start_line": start}
        for key in table:
            if key not in OVERRIDE_KEYS:
                raise at.error(key, f"unknown key; valid: {', '.join(sorted(OVERRIDE_KEYS))}", **where)
        if ("pruners" in table) == ("timing" in table):
            raise PresetError(f"{at.path}:{start}: key {section!r}: give exactly one of 'pruners', 'timing'")
        if "timing" in table:
            if table["timing"] not in TIMINGS:
                raise at.error("timing", f"{table['timing']!r} is not one of: {', '.join(TIMINGS)}", **where)
            selected = tuple(p for p in PRUNERS.names() if PRUNERS.get(p).timing == table["timing"])
        else:
            selected = _names(table["pruners"], "pruners", PRUNERS, Located(at.path, at.text, section))
        axes = Axes(
            sparsities=_sparsities(table["sparsities"], "sparsities", at, unpruned=study, **where)
            if "sparsities" in table
            else base.sparsities,
            seeds=seed_list(table["seeds"], "seeds", at, **where) if "seeds" in table else base.seeds,
            retrain=_choices(table["retrain"], "retrain", RETRAIN_RECIPES, at, **where)
            if "retrain" in table
            else base.retrain,
            train=_config(TrainConfig, base.train, table.get("train", {}), "train", at, **where),
            retrain_config=_config(
                RetrainConfig,
                base.retrain_config,
                table.get("retrain_config", {}),
                "retrain_config",
                at,
                **where,
            ),
            eval=_config(EvalConfig, base.eval, table.get("eval", {}), "eval", at, **where),
            controls=base.controls,
            pruner_config=_pruner_configs(table.get("pruner_config", {}), base.pruner_config, at, **where),
        )
        if "controls" in table:
            axes = replace(
                axes,
                controls=_controls(
                    table["controls"], tuple(p for p in selected if p in pruners), at, **where
                ),
            )
        overrides.append(Override(selected, axes))
    return Design(
        datasets=_names(raw["datasets"], "datasets", DATASETS, at),
        archs=_names(raw["archs"], "archs", ARCHS, at),
        pruners=pruners,
        axes=base,
        overrides=tuple(overrides),
    )


# -- presets ------------------------------------------------------------------------------------


def study_names() -> list[str]:
    return sorted(p.stem for p in STUDY_DIR.glob("*.toml"))


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def preset_path(name: str) -> Path:
    path = Path(name)
    if path.suffix == ".toml" and path.exists():
        return path
    candidate = PRESET_DIR / f"{name}.toml"
    if not candidate.exists():
        raise PresetError(unknown_name_message("preset", name, preset_names()))
    return candidate


def load_preset(name: str, extra_plugins: tuple[str, ...] = ()) -> Preset:
    """Read and validate a preset; its plugins (and ``extra_plugins``) are imported first, so
    the pruners they register can be named."""
    from pruners.plugins import PluginError, load_plugins

    path = preset_path(name)
    raw, text = read_toml(path)
    at = Located(path, text)
    plugins = raw.get("plugins", [])
    if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
        raise at.error("plugins", "must be a list of importable module names")
    try:
        load_plugins((*extra_plugins, *plugins))
    except PluginError as exc:
        raise PresetError(f"{path}:{line_of(text, 'plugins')}: {exc}") from None
    studies = raw.get("studies", [])
    if not isinstance(studies, list) or not all(isinstance(s, str) for s in studies):
        raise at.error("studies", "must be a list of study names (harness list studies)")
    for s in studies:
        if s not in study_names():
            raise at.error("studies", f"unknown study {s!r}; valid: {', '.join(study_names())}")
    design = parse_design(
        {k: v for k, v in raw.items() if k not in ("description", "plugins", "studies")}, at
    )
    return Preset(
        name=path.stem,
        path=path,
        description=str(raw.get("description", "")),
        design=design,
        plugins=tuple(plugins),
        studies=tuple(studies),
    )


def describe(name: str) -> str:
    try:
        return load_preset(name).description
    except PresetError as exc:
        return f"(invalid: {exc})"
