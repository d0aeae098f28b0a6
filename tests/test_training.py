"""Training recipes: augmentation and the stability of content ids."""

import torch

from benchmarks.training import TrainConfig, crop_flip
from core.spec import CellSpec


def test_crop_flip_is_a_seeded_shift_and_flip_of_each_image():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    a = crop_flip(x, torch.Generator().manual_seed(0))
    b = crop_flip(x, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b)
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for i in range(2):  # every output is a window of the padded image, maybe mirrored
        windows = [
            w
            for dy in range(9)
            for dx in range(9)
            for w in (padded[i, :, dy : dy + 8, dx : dx + 8], padded[i, :, dy : dy + 8, dx : dx + 8].flip(-1))
        ]
        assert any(torch.equal(a[i], w) for w in windows)
    assert not torch.equal(a, crop_flip(x, torch.Generator().manual_seed(1)))
    seq = torch.randn(4, 1, 40)
    assert torch.equal(crop_flip(seq, torch.Generator()), seq)  # sequences are not augmented


def test_augment_changes_ids():
    plain = CellSpec("mlp_256x2", "digits", "random", 0.5, 0)
    assert plain.to_dict()["train"]["augment"] == "none"
    augmented = CellSpec("mlp_256x2", "digits", "random", 0.5, 0, train=TrainConfig(augment="crop_flip"))
    assert augmented.cell_id("1") != plain.cell_id("1") and augmented.parent.id != plain.parent.id
    assert CellSpec.from_dict(augmented.to_dict()) == augmented
