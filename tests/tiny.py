"""A tiny preset and its store, for tests that need real cells in seconds: digits, mlp_256x2,
global_magnitude and random at sparsity 0.5, seed 0, one-epoch recipes, clean evaluation (two
cells on one dense parent). ``tiny_preset(**edits)`` changes a top-level line or adds one.
``members_of`` and ``pack`` read and write submission bundles member by member."""

import io
import tarfile
from pathlib import Path

from harness.cli import main

TINY = {
    "datasets": '["digits"]',
    "archs": '["mlp_256x2"]',
    "pruners": '["global_magnitude", "random"]',
    "sparsities": "[0.5]",
    "seeds": "[0]",
    "retrain": '["finetune"]',
}
TABLES = '[train]\nepochs = 1\n[retrain_config]\nepochs = 1\nrewind_epoch = 1\n[eval]\nsets = "clean"\n'


def tiny_text(**edits: str) -> str:
    """The preset's TOML, with ``key = value`` lines replaced or added (values as TOML text)."""
    lines = {**TINY, **edits}
    return "".join(f"{k} = {v}\n" for k, v in lines.items()) + TABLES


def tiny_preset(folder: Path, name: str = "tiny.toml", **edits: str) -> Path:
    path = folder / name
    path.write_text(tiny_text(**edits))
    return path


def tiny_store(folder: Path, *extra: str, **edits: str) -> tuple[Path, Path]:
    """``(preset, results)``: the tiny preset run into ``folder/results`` (one worker, no report)."""
    preset = tiny_preset(folder, **edits)
    results = folder / "results"
    args = ["run-all", "--preset", str(preset), "--results", str(results), "--workers", "1", "--no-report"]
    assert main([*args, *extra]) == 0
    return preset, results


def members_of(path: Path) -> dict[str, bytes]:
    """A bundle's members in order, name -> bytes."""
    with tarfile.open(path, "r:gz") as tar:
        return {info.name: tar.extractfile(info).read() for info in tar}


def pack(path: Path, members: dict[str, bytes]) -> Path:
    """``members`` as a .tar.gz bundle at ``path``."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path
