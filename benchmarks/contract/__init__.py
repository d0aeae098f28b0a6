"""The pruner contract, checked for any one pruner on any archs: one module, run by both
``harness check-pruner NAME|MODULE:CLASS`` (every registered arch, one printed line per check) and
``tests/test_pruner_contract.py`` (every registered pruner, parametrised over the archs).

The contract of ``pruners.base`` (``pruners.contract`` holds its sparsity rule, which every cell
checks too), for a pruner built in or brought by a plugin:

- ``declares``: a ``kind``, ``timing`` and ``version``, a class docstring (its summary is what
  ``harness list`` shows) and a frozen ``Config`` dataclass whose fields each carry a
  description (``param(default, doc)``); structured pruners ``compact`` and ``unit_sparsity``,
  during-training ones ``train_sparse``.
- ``sparsity``: on every registered arch the achieved sparsity (what the ``torch.nn.utils.prune``
  masks say, which is what the harness records) equals the target ``s``: the number of zero
  weights within one weight of ``s * n`` for ``scope = "global"``, within one weight per layer
  otherwise (layer-wise ranking rounds each layer); for structured pruners the removed units
  within one unit per group, and ``unit_sparsity`` agreeing with the masks. Pruners that train
  are measured after ``prune`` and at the end of their own training: ``train_sparse``
  (during-training pruners) or ``prune_with_phase`` (phase pruners, on a trained parent).
- ``zero``: masked weights stay exactly zero, and masks unchanged, through a short training
  run (``benchmarks.training.train`` on random tensors); pruning leaves unmasked tensors
  untouched (except for pruners that train: during-training and phase pruners).
- ``structure`` (structured pruners): removed units are whole (weight rows, bias, BatchNorm
  scale and shift, the consumer's inputs), output exactly zero after training, and
  ``compact`` gives a smaller model with the same outputs.
- ``determinism``: the same model, inputs and seed give identical masks; whether another seed
  gives other masks is only reported.
- ``io``: while any pruner method runs, no file is opened, removed or renamed, no process
  started and no socket created (``sys.addaudithook``, PEP 578), apart from the import
  system's reads (sources, installed packages, package metadata: pruners import lazily). One
  training step before the checks imports what training imports lazily (``torch._dynamo``
  probes the temp dir), so that torch's own start-up is not charged to the pruner.
- ``runs``: no pruner call raised on any arch.

Archs are built at the contract test's small input shapes, 1-D ``(1, 40)`` and 2-D
``(1, 8, 8)``. The CIFAR-scale archs (over ``HEAVY_PARAMS`` parameters or ``HEAVY_LAYERS``
prunable layers at the 1-D shape) run at the 1-D shape and one sparsity only (the highest;
train_sparse at ``TRAIN_SPARSITY``), with fewer training steps, and a built-in pruner too slow
there at its defaults runs with a reduced config (``HEAVY_CONFIG``: synflow's rounds, force's and
iter_snip's steps; named in the detail lines), so that a check takes under a minute on one CPU
thread. Every pruner call is memoised per (arch, shape, sparsity, seed), so the checks share the
pruned models; the determinism check repeats calls uncached.
"""

from benchmarks.contract.checks import CHECKS, run_checks
from benchmarks.contract.io_guard import guarded
from benchmarks.contract.session import (
    HEAVY_CONFIG,
    SHAPES,
    Result,
    Session,
    context,
    is_heavy,
    make,
    warm_up,
)

__all__ = [
    "CHECKS",
    "HEAVY_CONFIG",
    "SHAPES",
    "Result",
    "Session",
    "context",
    "guarded",
    "is_heavy",
    "make",
    "run_checks",
    "warm_up",
]
