"""Frozen, content-addressed descriptions of what one run computes.

A ``ParentSpec`` is a dense training run (arch, dataset, seed, recipe); a ``CellSpec`` is one
pruning cell on top of it. Every hyperparameter that changes a number is a field: the
training and retraining recipes, the pruner's own config (``pruner_config``, the resolved
fields of the pruner's ``Config`` dataclass), the evaluation settings (``EvalConfig``), the
mask control and the plugin that provides the pruner. Ids are the first 16 hex digits of
the SHA-256 of the spec's canonical JSON (sorted keys, no whitespace) plus ``SPEC_VERSION``
and, for cells, the pruner's version: editing any of them changes the id, so a stale result
is never taken for a current one, and re-running is idempotent. (open_lth hashes ``str()``
of its config, which shifts when a field is added; canonical JSON does not.)
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, fields, replace

from core.config import param

SPEC_VERSION = 2
RETRAIN_RECIPES = ("finetune", "lr_rewind", "weight_rewind")
SELECTIONS = ("last", "best_val_loss")
AUGMENTATIONS = ("none", "crop_flip")
EVAL_SETS = ("all", "clean")
# Mask sanity controls (Frankle, Dziugaite, Roy & Carbin, ICLR 2021; Su et al. 2020): the
# pruner's mask shuffled within each layer, the kept weights re-initialised, the scores inverted.
MASK_CONTROLS = ("none", "shuffle_layer", "reinit", "invert")
# seeds are non-negative integers below 2^31: every RNG prunebench seeds (torch, numpy, Python)
# takes them, offsets added to them stay in int64, and the store keeps them as int64
MAX_SEED = 2**31 - 1


def check_seed(seed: object) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed {seed!r} must be a non-negative integer <= {MAX_SEED} (2^31 - 1)")


def canonical_json(obj: dict) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def content_id(obj: dict) -> str:
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class TrainConfig:
    """A training recipe on in-memory tensors (``benchmarks.training.train``)."""

    epochs: int = param(30, "training epochs")
    batch_size: int = param(128, "minibatch size")
    lr: float = param(1e-2, "peak learning rate")
    weight_decay: float = param(1e-4, "coupled L2 weight decay (lambda * w added to the gradient)")
    optimizer: str = param("adam", "adam or sgd (momentum below)")
    momentum: float = param(0.9, "SGD momentum")
    nesterov: bool = param(False, "SGD with Nesterov momentum (ShrinkBench's default, Good et al. 2022)")
    schedule: str = param("cosine", "cosine, constant, or step (x0.1 at each of lr_drop_epochs)")
    lr_drop_epochs: tuple = param((), "step schedule: epochs from whose start the lr is multiplied by 0.1")
    augment: str = param("none", "none or crop_flip (images)")

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr_drop_epochs", tuple(self.lr_drop_epochs))
        drops = self.lr_drop_epochs
        if any(
            isinstance(e, bool) or not isinstance(e, int) or not 0 < e < max(self.epochs, 1) for e in drops
        ):
            raise ValueError(f"lr_drop_epochs {list(drops)} must be epochs in 1..epochs-1")
        if list(drops) != sorted(set(drops)) or (drops and self.schedule != "step"):
            raise ValueError("lr_drop_epochs must be increasing and given with schedule = 'step'")
        if self.augment not in AUGMENTATIONS:
            raise ValueError(f"augment {self.augment!r} is not one of: {', '.join(AUGMENTATIONS)}")
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer {self.optimizer!r} is not one of: adam, sgd")
        if self.schedule not in ("cosine", "constant", "step"):
            raise ValueError(f"schedule {self.schedule!r} is not one of: cosine, constant, step")
        if self.epochs < 0 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("epochs must be >= 0, batch_size >= 1 and lr > 0")

    def as_dict(self) -> dict:
        return asdict(self)

    def lr_at(self, progress: float) -> float:
        """Learning rate when a fraction ``progress`` in [0, 1] of the schedule is done:
        ``cosine``: ``lr * 0.5 * (1 + cos(pi * t))`` (Loshchilov & Hutter 2017); ``constant``: ``lr``;
        ``step``: ``lr * 0.1^k``, ``k`` the drops at or before the current epoch (He et al. 2016)."""
        if self.schedule == "constant":
            return self.lr
        if self.schedule == "step":
            epoch = progress * self.epochs + 1e-9
            return self.lr * 0.1 ** sum(epoch >= e for e in self.lr_drop_epochs)
        return self.lr * 0.5 * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))


@dataclass(frozen=True)
class RetrainConfig:
    """Budgets of the retraining recipes (``benchmarks.retrain``)."""

    epochs: int = param(5, "retraining epochs (finetune; the replayed tail for lr_rewind)")
    finetune_lr: float = param(1e-3, "finetune: learning rate (constant, or the peak of a cosine decay)")
    finetune_schedule: str = param("constant", "finetune: constant or cosine learning rate over its epochs")
    rewind_epoch: int = param(2, "epoch of the dense run whose iterate weight rewinding restores")
    patience: int = param(
        0, "stop after this many epochs without a lower validation loss (0: never stop early)", ge=0
    )
    selection: str = param(
        "best_val_loss", "which retraining epoch is kept: best_val_loss (lowest validation loss) or last"
    )

    def __post_init__(self) -> None:
        if self.finetune_schedule not in ("constant", "cosine"):
            raise ValueError(f"finetune_schedule {self.finetune_schedule!r} is not one of: constant, cosine")
        if self.selection not in SELECTIONS:
            raise ValueError(f"selection {self.selection!r} is not one of: {', '.join(SELECTIONS)}")
        if self.epochs < 0 or self.finetune_lr <= 0 or self.rewind_epoch < 0:
            raise ValueError("epochs and rewind_epoch must be >= 0 and finetune_lr > 0")


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation settings that change numbers: the pruners' scoring batches and the shift sets."""

    score_batches: int = param(8, "training minibatches a data-dependent pruner scores on")
    score_batch_size: int = param(256, "examples per scoring minibatch")
    sets: str = param("all", "all (clean, every corruption x severity, OOD) or clean (train/val/test)")
    shift_set_size: int = param(0, "examples per corruption x severity set (0: the dataset's default)")
    ood_set_size: int = param(0, "examples per OOD set (0: the dataset's default)")
    predictions: bool = param(False, "also store each clean test example's predicted label (PIE analysis)")

    def __post_init__(self) -> None:
        if self.sets not in EVAL_SETS:
            raise ValueError(f"sets {self.sets!r} is not one of: {', '.join(EVAL_SETS)}")
        if self.score_batches < 1 or self.score_batch_size < 1:
            raise ValueError("score_batches and score_batch_size must be >= 1")
        if self.shift_set_size < 0 or self.ood_set_size < 0:
            raise ValueError("shift_set_size and ood_set_size must be >= 0")

    @property
    def id(self) -> str:
        return "e" + content_id(asdict(self))


@dataclass(frozen=True)
class ParentSpec:
    """A dense training run; its evaluation rows are kept per ``EvalConfig`` beside it."""

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
    """One pruning cell. ``pruner_config`` holds every field of the pruner's config, defaults
    included (``benchmarks.matrix`` resolves them), so changing a default changes the id."""

    arch: str
    dataset: str
    pruner: str
    sparsity: float
    seed: int
    retrain: str = "finetune"
    train: TrainConfig = field(default_factory=TrainConfig)
    retrain_config: RetrainConfig = field(default_factory=RetrainConfig)
    pruner_config: dict = field(default_factory=dict)
    eval: EvalConfig = field(default_factory=EvalConfig)
    control: str = "none"
    plugin: str | None = None  # "distribution==version" of the plugin that registers the pruner

    def __post_init__(self) -> None:
        check_seed(self.seed)
        if not 0.0 <= self.sparsity < 1.0:  # 0: the unpruned control (t = 1), fine-tuned only
            raise ValueError(f"sparsity {self.sparsity} is outside [0, 1)")
        if self.retrain not in RETRAIN_RECIPES:
            raise ValueError(f"retrain {self.retrain!r} is not one of: {', '.join(RETRAIN_RECIPES)}")
        if self.control not in MASK_CONTROLS:
            raise ValueError(f"control {self.control!r} is not one of: {', '.join(MASK_CONTROLS)}")

    def __hash__(self) -> int:
        return hash(canonical_json(self.to_dict()))

    @property
    def parent(self) -> ParentSpec:
        return ParentSpec(self.arch, self.dataset, self.seed, self.train, self.retrain_config.rewind_epoch)

    def to_dict(self) -> dict:
        return {"spec_version": SPEC_VERSION, **asdict(self), "train": self.train.as_dict()}

    def cell_id(self, pruner_version: str) -> str:
        return "c" + content_id({**self.to_dict(), "pruner_version": pruner_version})

    def with_(self, **changes) -> CellSpec:
        return replace(self, **changes)

    @classmethod
    def from_dict(cls, d: dict) -> CellSpec:
        d = {k: v for k, v in d.items() if k not in ("spec_version", "cell_type")}
        d["train"] = TrainConfig(**d["train"])
        d["retrain_config"] = RetrainConfig(**d["retrain_config"])
        d["eval"] = EvalConfig(**d.get("eval", {}))
        return cls(**d)

    @staticmethod
    def field_names() -> list[str]:
        return [f.name for f in fields(CellSpec)]


STABILITY_TARGETS = ("prune_s", "prune_l", "prune_r", "none")
STABILITY_VARIANTS = ("permanent", "noise_zero", "noise_gauss", "none")


@dataclass(frozen=True)
class StabilitySpec:
    """One training run of the generalization-stability study (Bartoldson et al. 2020); a cell
    whose id starts with ``s`` (``benchmarks.stability`` runs it).

    From a fresh initialisation the run trains ``train.epochs`` epochs and, after epochs
    ``first_event, first_event + every, ..., <= last_event``, removes units of the last
    ``layers`` unit groups: ``target`` ``prune_s`` the lowest-scoring units, ``prune_l`` the
    highest, ``prune_r`` random, ``none`` never (the no-pruning baseline). Scores come from the
    structured pruner ``scorer`` with ``scorer_config``; the removed count rises linearly over
    the events to ``round(final_fraction * units)`` per layer. ``variant`` ``permanent`` masks
    the units for good; ``noise_zero`` zeroes them for ``noise_batches`` optimizer steps, then
    lets them regrow from zero; ``noise_gauss`` adds Gaussian noise of the layer's weight std to
    them after each of ``noise_batches`` steps.
    """

    arch: str
    dataset: str
    seed: int
    target: str
    variant: str
    every: int = 1
    first_event: int = 2
    last_event: int = 14
    final_fraction: float = 0.5
    layers: int = 2
    scorer: str = "l1_filter"
    scorer_config: dict = field(default_factory=lambda: {"p": 2})
    noise_batches: int = 0
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(epochs=24, lr=1e-3, weight_decay=0.0, schedule="constant")
    )

    def __post_init__(self) -> None:
        if self.target not in STABILITY_TARGETS:
            raise ValueError(f"target {self.target!r} is not one of: {', '.join(STABILITY_TARGETS)}")
        if self.variant not in STABILITY_VARIANTS:
            raise ValueError(f"variant {self.variant!r} is not one of: {', '.join(STABILITY_VARIANTS)}")
        if (self.target == "none") != (self.variant == "none"):
            raise ValueError("the no-pruning baseline has target 'none' and variant 'none', and only it")
        check_seed(self.seed)
        if not 0.0 < self.final_fraction < 1.0:
            raise ValueError(f"final_fraction {self.final_fraction} is outside (0, 1)")
        if self.every < 1 or self.first_event < 1 or self.last_event < self.first_event:
            raise ValueError("every >= 1 and 1 <= first_event <= last_event are required")
        if self.last_event >= self.train.epochs:
            raise ValueError(
                f"last_event {self.last_event} must come before the last epoch ({self.train.epochs})"
            )
        if self.variant.startswith("noise") and self.noise_batches < 1:
            raise ValueError("a noise variant needs noise_batches >= 1")

    def __hash__(self) -> int:
        return hash(canonical_json(self.to_dict()))

    @property
    def event_epochs(self) -> list[int]:
        """The epochs after which events happen (0-based epoch index of the epoch just trained)."""
        if self.target == "none":
            return []
        return list(range(self.first_event, self.last_event + 1, self.every))

    def to_dict(self) -> dict:
        return {
            "spec_version": SPEC_VERSION,
            "cell_type": "stability",
            **asdict(self),
            "train": self.train.as_dict(),
        }

    def cell_id(self, scorer_version: str) -> str:
        return "s" + content_id({**self.to_dict(), "scorer_version": scorer_version})

    @classmethod
    def from_dict(cls, d: dict) -> StabilitySpec:
        d = {k: v for k, v in d.items() if k not in ("spec_version", "cell_type")}
        d["train"] = TrainConfig(**d["train"])
        return cls(**d)
