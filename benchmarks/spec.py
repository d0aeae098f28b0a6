"""Frozen, content-addressed descriptions of what one run computes.

A ``ParentSpec`` is a dense training run (arch, dataset, seed, recipe); a ``CellSpec`` is one
pruning cell on top of it. Ids are the first 16 hex digits of the SHA-256 of the spec's
canonical JSON (sorted keys, no whitespace) plus ``SPEC_VERSION`` and, for cells, the
pruner's version: editing a field or a pruner changes the id, re-running is idempotent.
(open_lth hashes ``str()`` of its config, which shifts when a field is added; JSON does not.)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields

from benchmarks.training import TrainConfig

SPEC_VERSION = 1
RETRAIN_RECIPES = ("finetune", "lr_rewind", "weight_rewind")


def canonical_json(obj: dict) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def content_id(obj: dict) -> str:
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RetrainConfig:
    """Budgets of the retraining recipes (see ``benchmarks.retrain``)."""

    epochs: int = 5
    finetune_lr: float = 1e-3
    rewind_epoch: int = 2


@dataclass(frozen=True)
class ParentSpec:
    arch: str
    dataset: str
    seed: int
    train: TrainConfig = field(default_factory=TrainConfig)
    rewind_epoch: int = 2

    def to_dict(self) -> dict:
        return {"spec_version": SPEC_VERSION, **asdict(self), "train": self.train.as_dict()}

    @property
    def id(self) -> str:
        return "p" + content_id(self.to_dict())


@dataclass(frozen=True)
class CellSpec:
    arch: str
    dataset: str
    pruner: str
    sparsity: float
    seed: int
    retrain: str = "finetune"
    study: str = "prune"
    train: TrainConfig = field(default_factory=TrainConfig)
    retrain_config: RetrainConfig = field(default_factory=RetrainConfig)

    def __post_init__(self) -> None:
        if not 0.0 < self.sparsity < 1.0:
            raise ValueError(f"sparsity {self.sparsity} is outside (0, 1)")
        if self.retrain not in RETRAIN_RECIPES:
            raise ValueError(f"retrain {self.retrain!r} is not one of: {', '.join(RETRAIN_RECIPES)}")

    @property
    def parent(self) -> ParentSpec:
        return ParentSpec(self.arch, self.dataset, self.seed, self.train, self.retrain_config.rewind_epoch)

    def to_dict(self) -> dict:
        return {"spec_version": SPEC_VERSION, **asdict(self), "train": self.train.as_dict()}

    def cell_id(self, pruner_version: str) -> str:
        return "c" + content_id({**self.to_dict(), "pruner_version": pruner_version})

    @classmethod
    def from_dict(cls, d: dict) -> CellSpec:
        d = {k: v for k, v in d.items() if k != "spec_version"}
        d["train"] = TrainConfig(**d["train"])
        d["retrain_config"] = RetrainConfig(**d["retrain_config"])
        return cls(**d)

    @staticmethod
    def field_names() -> list[str]:
        return [f.name for f in fields(CellSpec)]
