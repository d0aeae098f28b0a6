"""A study file's design, read and expanded into cells (``benchmarks/studies/*.toml``).

A study is a published claim put to a test (``shared/design/claims.md`` section 0). This module
reads its file and expands its design; its claims are its analysis' to check
(``analysis.registry.check_study``), and the harness joins the two halves when it plans a run
(``harness.runner.load_checked_study``). A study file declares

- ``name``, ``version`` (bump it when the design or a hypothesis changes), ``title``,
  ``description`` and the ``analysis`` that tests it (a module of ``analysis/``);
- its design: one ``[design]`` table with a preset's keys (``benchmarks.matrix``), or several
  ``[[design]]`` tables (their union), or ``uses = "other_study"`` (the same cells, another
  claim about them), ``uses = "leaderboard"`` (the running preset's own cells), or a
  ``[stability]`` table (the runs of ``benchmarks.stability``);
- its ``[[claim]]`` tables, each with its hypotheses (``[[claim.hypothesis]]``: statement,
  test, direction, error rate, the paper's effect), exactly one of them ``primary``
  (``core.hypotheses``, checked by its analysis), and free-form ``[paper]`` numbers to show
  beside ours;
- an optional ``[regime]`` table: the thresholds of its regime gates (``core.hypotheses.regime``).

Its cells are ordinary content-addressed cells: a cell whose spec coincides with a
leaderboard cell, or another study's, is computed once. ``run-all`` writes each study's
manifest (its definition and the ids of its cells) into the results dir, which is what the
analysis reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmarks.matrix import STUDY_DIR, Located, PresetError, parse_design, read_toml, study_names
from core.registry import unknown_name_message

STUDY_KEYS = {
    "name",
    "version",
    "title",
    "description",
    "analysis",
    "design",
    "uses",
    "stability",
    "claim",
    "paper",
    "regime",
}
LEADERBOARD = "leaderboard"  # ``uses = "leaderboard"``: a claim about the preset's own cells
SEED_BLOCK = 1000  # block k of a study's seeds is its seeds + k * SEED_BLOCK (disjoint, same size)


def shift_seeds(cells, block: int) -> tuple:
    """The same cells on seed block ``block`` (``seed + block * SEED_BLOCK``): a second, disjoint
    sample of dense models and runs of the same size, to check that verdicts hold on it."""
    from dataclasses import replace

    return tuple(replace(c, seed=c.seed + block * SEED_BLOCK) for c in cells) if block else tuple(cells)


@dataclass(frozen=True)
class Study:
    name: str
    version: int
    path: Path
    definition: dict  # the whole TOML, as read (what the manifest stores)
    cells: tuple  # expanded specs (CellSpec or StabilitySpec)

    @property
    def title(self) -> str:
        return self.definition["title"]

    @property
    def analysis(self) -> str:
        return self.definition["analysis"]

    @property
    def uses_leaderboard(self) -> bool:
        return self.definition.get("uses") == LEADERBOARD


def study_path(name: str) -> Path:
    path = STUDY_DIR / f"{name}.toml"
    if not path.exists():
        raise PresetError(unknown_name_message("study", name, study_names()))
    return path


def load_study(name: str, _seen: tuple[str, ...] = (), seed_block: int = 0) -> Study:
    """Read, validate and expand one study file; ``seed_block`` k > 0 shifts every seed of its
    design by ``k * SEED_BLOCK`` (``shift_seeds``)."""
    path = study_path(name)
    raw, text = read_toml(path)
    at = Located(path, text)
    for key in raw:
        if key not in STUDY_KEYS:
            raise at.error(key, f"unknown key; valid: {', '.join(sorted(STUDY_KEYS))}")
    for key in ("name", "version", "title", "description", "analysis", "claim"):
        if key not in raw:
            raise PresetError(f"{path}:1: key {key!r} is missing")
    if raw["name"] != path.stem:
        raise at.error("name", f"{raw['name']!r} must equal the file's name {path.stem!r}")
    if isinstance(raw["version"], bool) or not isinstance(raw["version"], int) or raw["version"] < 1:
        raise at.error("version", f"{raw['version']!r} is not a positive integer")
    if not isinstance(raw["analysis"], str):
        raise at.error("analysis", f"{raw['analysis']!r} is not the name of an analysis")
    designs = [k for k in ("design", "uses", "stability") if k in raw]
    if len(designs) != 1:
        raise PresetError(
            f"{path}:1: give exactly one of 'design', 'uses', 'stability' (found {designs or 'none'})"
        )
    if "design" in raw:
        designs = raw["design"] if isinstance(raw["design"], list) else [raw["design"]]
        seen: dict = {}
        for i, table in enumerate(designs):
            prefix = f"design[{i}]" if isinstance(raw["design"], list) else "design"
            for cell in parse_design(table, Located(path, text, prefix), study=True).expand():
                seen.setdefault(cell, None)
        cells = tuple(seen)
    elif raw.get("uses") == LEADERBOARD:
        cells = ()  # the running preset's leaderboard cells (``harness.runner.build_plan``)
    elif "uses" in raw:
        if raw["uses"] in (*_seen, name):
            raise at.error("uses", f"{raw['uses']!r} leads back to {name!r}")
        cells = load_study(raw["uses"], (*_seen, name)).cells
    else:
        from benchmarks.stability_design import expand_stability

        try:
            cells = tuple(expand_stability(raw["stability"]))
        except ValueError as exc:
            raise PresetError(f"{path}:{line_of_key(text, str(exc))}: {exc}") from None
    return Study(name, raw["version"], path, raw, shift_seeds(cells, seed_block))


def line_of_key(text: str, message: str) -> int:
    import re

    from benchmarks.matrix import line_of

    found = re.search(r"key '([^']+)'", message)
    return line_of(text, found.group(1), "stability") if found else line_of(text, "stability")
