"""What a dataset declares about its shift sets (``ShiftProfile``), read by ``benchmarks.shifts.sets``.

A dataset module (``benchmarks/datasets/<name>.py``) declares which corruption families apply
(a corruption's ``domain``), which severity table it reads (a size class of
``severities.toml``), at which severities, which OOD sets it is scored against and how many
examples each set holds. ``benchmarks.datasets`` attaches the profile to the loaded splits
(``DatasetSplits.shifts``) and the matrix reads its sizes into every cell id
(``benchmarks.matrix.resolved_eval``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from benchmarks.shifts.base import SEVERITIES, Shift

DEFAULT_SET_SIZE = 1000  # examples per set unless a dataset declares fewer (real datasets, on a GPU)


@dataclass(frozen=True)
class ShiftProfile:
    # corruption families that apply: image, grayscale, sequence, mnist1d (``Shift.domain``)
    corruptions: tuple[str, ...] = ()
    # size classes of the severity tables, in order of preference; a type that has none of them
    # uses its ``any`` table (e.g. ("tiny_gray", "tiny") for 8x8 grey digits)
    tables: tuple[str, ...] = ()
    ood: tuple[str, ...] = ()  # names of the registered OOD sets the dataset is scored against
    severities: tuple[int, ...] = SEVERITIES
    # examples per corruption x severity set (a class-stratified subset of the test split, at
    # most all of it, or as many regenerated) and per OOD set, unless the preset's [eval] sets them
    shift_size: int = DEFAULT_SET_SIZE
    ood_size: int = DEFAULT_SET_SIZE

    def applies(self, shift: Shift) -> bool:
        """Whether ``shift`` is one of the dataset's sets."""
        return shift.domain in self.corruptions if shift.kind == "corruption" else shift.name in self.ood

    def table(self, shift: Shift) -> str:
        """The size class of ``shift``'s severity table this dataset reads."""
        return next((t for t in self.tables if t in shift.params), "any")

    def param(self, shift: Shift, severity: int) -> Any:
        """The corruption's parameter at ``severity`` for this dataset."""
        return shift.param(severity, self.table(shift))


NO_SHIFTS = ShiftProfile()  # splits built outside the registry: the clean splits only
