"""What a study declares about its claim, as stored in a results dir's study manifests.

A study (``benchmarks/studies/*.toml``, ``shared/design/claims.md`` section 0) is a claim
put to a test: a design (its cells) plus hypotheses, exactly one of them ``primary``, each
with its direction, test, error rate and the paper's effect. ``run-all`` writes each
study's manifest to ``<results>/studies/<name>.json`` (definition and cell ids), so the
analysis reads a claim's hypotheses from the store it analyses, never from files that may
have changed since.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DIRECTIONS = ("less", "greater", "two-sided", "any", "equivalence", "noninferiority")
# The verdict words (``shared/design/claims.md`` section 0b), the one list the analysis, the
# report and the tests use; ``analysis.verdict`` gives each its rule.
VERDICTS = (
    "reproduced",
    "contradicted",
    "absent",
    "inconclusive",
    "inconclusive (underpowered)",
    "out of regime",
    "unsettled",
)
MARGIN_DIRECTIONS = ("equivalence", "noninferiority")
MANIFEST_VERSION = 1
# The regime gates' thresholds (claims.md 0b), overridable per study in a ``[regime]`` table.
REGIME_DEFAULTS = {
    "collapse_margin": 0.10,  # collapsed: mean A_t < chance + this
    "relative_collapse": 0.5,  # collapsed (per-class, distortion claims): (A_t - chance)/(A - chance) < this
    "max_last_epoch_share": 0.2,  # convergence: at most this share of cells keep their last epoch
    "fit_threshold": 0.99,  # stability study: baseline training accuracy before the last event
    "min_stability": 0.8,  # below this bootstrap stability a verdict is "unsettled"
}


class StudyError(ValueError):
    """A study file or manifest that cannot be used; the message names the key."""


@dataclass(frozen=True)
class Hypothesis:
    """One hypothesis of a study: ``estimate <direction> null`` by ``test`` at level ``alpha``.

    ``effect`` is the effect the design must be able to detect, on the estimate's scale and
    relative to ``null`` (the paper's own number where known, ``effect_source = "paper"``;
    else a stated effect of interest, ``"stated"``); ``margin`` is the equivalence margin of
    a TOST (``direction = "equivalence"``) or a non-inferiority test. ``sesoi`` is the smallest
    effect of interest on the estimate's scale (relative to ``null``): an interval inside
    ``+-sesoi`` shows the effect ``absent``; every primary hypothesis declares it (a margin test's
    margin is its SESOI). ``scope`` selects the rows the test reads.
    """

    id: str
    statement: str
    test: str
    direction: str
    alpha: float
    null: float = 0.0
    effect: float | None = None
    effect_source: str = "stated"
    margin: float | None = None
    sesoi: float | None = None
    primary: bool = False
    scope: dict[str, Any] = field(default_factory=dict)
    paper: str = ""  # the paper's number in words, shown beside ours

    @classmethod
    def from_table(cls, table: dict, where: str) -> Hypothesis:
        known = {f for f in cls.__dataclass_fields__}
        for key in table:
            if key not in known:
                raise StudyError(f"{where}.{key}: unknown key; valid: {', '.join(sorted(known))}")
        for key in ("id", "statement", "test", "direction", "alpha"):
            if key not in table:
                raise StudyError(f"{where}.{key}: missing")
        if table["direction"] not in DIRECTIONS:
            raise StudyError(
                f"{where}.direction: {table['direction']!r} is not one of: {', '.join(DIRECTIONS)}"
            )
        alpha = table["alpha"]
        if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 0.5:
            raise StudyError(f"{where}.alpha: {alpha!r} is not a number in (0, 0.5)")
        if table["direction"] in ("equivalence", "noninferiority") and not table.get("margin"):
            raise StudyError(f"{where}.margin: an {table['direction']} test needs a positive margin")
        if table.get("effect_source", "stated") not in ("paper", "stated"):
            raise StudyError(f"{where}.effect_source: must be 'paper' or 'stated'")
        sesoi = table.get("sesoi")
        if sesoi is not None and (
            isinstance(sesoi, bool) or not isinstance(sesoi, int | float) or not 0 < sesoi < float("inf")
        ):
            raise StudyError(f"{where}.sesoi: {sesoi!r} is not a positive number")
        if table.get("primary") and sesoi is None and table["direction"] not in MARGIN_DIRECTIONS:
            raise StudyError(
                f"{where}.sesoi: missing; a primary hypothesis states its smallest effect of interest "
                "(a positive number on the estimate's scale)"
            )
        return cls(**{**table, "alpha": float(alpha), **({"sesoi": float(sesoi)} if sesoi else {})})

    @property
    def smallest_effect(self) -> float:
        """The SESOI on the estimate's scale: ``sesoi``, else a margin test's ``margin``, else 0."""
        if self.sesoi is not None:
            return float(self.sesoi)
        return float(self.margin) if self.margin and self.direction in MARGIN_DIRECTIONS else 0.0


@dataclass(frozen=True)
class Claim:
    """One published claim a study tests: one primary hypothesis, any number of secondary ones."""

    id: str
    title: str
    paper: str
    hypotheses: tuple[Hypothesis, ...]

    @property
    def primary(self) -> Hypothesis:
        return next(h for h in self.hypotheses if h.primary)

    def hypothesis(self, hid: str) -> Hypothesis:
        for h in self.hypotheses:
            if h.id == hid:
                return h
        raise StudyError(f"claim {self.id!r} has no hypothesis {hid!r}")


CLAIM_KEYS = {"id", "title", "paper", "hypothesis"}


def regime(definition: dict, where: str = "study") -> dict[str, float]:
    """The regime thresholds of a study: ``REGIME_DEFAULTS`` updated by its ``[regime]`` table
    (each value a number in (0, 1]; an unknown key or a bad value is a ``StudyError``)."""
    table = definition.get("regime", {}) or {}
    if not isinstance(table, dict):
        raise StudyError(f"{where}.regime: must be a table of thresholds")
    out = dict(REGIME_DEFAULTS)
    for key, value in table.items():
        if key not in REGIME_DEFAULTS:
            valid = ", ".join(sorted(REGIME_DEFAULTS))
            raise StudyError(f"{where}.regime.{key}: unknown key; valid: {valid}")
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
            raise StudyError(f"{where}.regime.{key}: {value!r} is not a number in (0, 1]")
        out[key] = float(value)
    return out


def claims(definition: dict, where: str = "study", valid_tests: tuple[str, ...] = ()) -> list[Claim]:
    """The validated ``[[claim]]`` tables of a study definition, each with exactly one primary
    hypothesis (``[[claim.hypothesis]]``); with ``valid_tests`` (the tests its analysis implements,
    ``analysis.registry.check_study``) every hypothesis must name one of them."""
    tables = definition.get("claim", [])
    regime(definition, where)
    if not isinstance(tables, list) or not tables:
        raise StudyError(f"{where}: key 'claim' must be one or more [[claim]] tables")
    out, seen = [], set()
    for i, table in enumerate(tables):
        w = f"{where}.claim[{i}]"
        for key in table:
            if key not in CLAIM_KEYS:
                raise StudyError(f"{w}.{key}: unknown key; valid: {', '.join(sorted(CLAIM_KEYS))}")
        for key in ("id", "title", "paper", "hypothesis"):
            if key not in table:
                raise StudyError(f"{w}.{key}: missing")
        hyps = tuple(
            Hypothesis.from_table(t, f"{w}.hypothesis[{j}]") for j, t in enumerate(table["hypothesis"])
        )
        for j, h in enumerate(hyps):
            if valid_tests and h.test not in valid_tests:
                raise StudyError(
                    f"{w}.hypothesis[{j}].test: {h.test!r} is not one of: {', '.join(valid_tests)}"
                )
        n_primary = sum(h.primary for h in hyps)
        if n_primary != 1:
            raise StudyError(f"{w}: exactly one hypothesis must have primary = true (found {n_primary})")
        ids = [h.id for h in hyps]
        if len(set(ids)) != len(ids):
            raise StudyError(f"{w}: hypothesis ids repeat: {ids}")
        if table["id"] in seen:
            raise StudyError(f"{w}.id: claim {table['id']!r} is declared twice")
        seen.add(table["id"])
        out.append(Claim(table["id"], table["title"], table["paper"], hyps))
    return out
