import numpy as np
import pytest
import torch

from benchmarks.archs import build_arch
from benchmarks.datasets import DATASETS, load_dataset
from benchmarks.evaluation import evaluate, evaluation_sets
from benchmarks.shifts import SEVERITIES, SHIFTS, applicable_shifts, build_shift_set, clear_memory, shift_sets
from benchmarks.shifts import sets as shift_sets_module
from benchmarks.shifts.base import severity_tables
from benchmarks.shifts.sets import stratified_subset

CIFAR_C_15 = {
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression",
}  # fmt: skip
CIFAR_C_EXTRA = {"speckle_noise", "gaussian_blur", "spatter", "saturate"}
MNIST_C = {"rotate", "shear", "scale", "translate", "stripe", "zigzag", "dotted_line"}
IMAGE = sorted(n for n in SHIFTS.names() if SHIFTS.get(n).domain in ("image", "grayscale"))


def corruption_names(data):
    return {s.name for s in applicable_shifts(data, "corruption")}


def test_every_dataset_gets_its_shift_types():
    digits = load_dataset("digits")
    assert corruption_names(digits) == CIFAR_C_15 | CIFAR_C_EXTRA | MNIST_C
    for name in ("mnist1d", "mnist1d_hard"):
        seq = corruption_names(load_dataset(name))
        assert len(seq) >= 6 and not seq & CIFAR_C_15
    for data in (digits, load_dataset("mnist1d")):
        ood = applicable_shifts(data, "ood")
        assert {s.proximity for s in ood} == {"near", "far"}
        assert all(s.name.startswith(s.proximity + "_") for s in ood)
    for name in SHIFTS.names():
        shift = SHIFTS.get(name)
        assert shift.description and shift.source
        assert all(len(row) == 5 for row in shift.params.values())


@pytest.mark.parametrize("name", DATASETS.names())
def test_every_dataset_declares_registered_shift_sets(name):
    """A dataset's profile names registered families, size classes and OOD sets only."""
    profile = DATASETS.get(name).shifts
    families = {s.domain for s in map(SHIFTS.get, SHIFTS.names()) if s.kind == "corruption"}
    assert set(profile.corruptions) <= families
    entries = [e for f in profile.corruptions for e in severity_tables()[f].values()]
    assert set(profile.tables) <= {size_class for e in entries for size_class in e["params"]}
    assert all(n in SHIFTS and SHIFTS.get(n).kind == "ood" for n in profile.ood)
    assert set(profile.severities) <= set(SEVERITIES) and profile.shift_size > 0 and profile.ood_size > 0
    for family in profile.corruptions:  # every type of a family has a row for the dataset
        for shift in (SHIFTS.get(n) for n in severity_tables()[family]):
            assert profile.table(shift) in shift.params


def test_severity_tables_are_data_read_once():
    tables = severity_tables()
    assert tables is severity_tables()
    registered = {n for n in SHIFTS.names() if SHIFTS.get(n).kind == "corruption"}
    assert {n for family in tables.values() for n in family} == registered
    assert SHIFTS.get("glass_blur").param(5, "tiny") == (1.0, 3, 2)  # integers stay integers
    assert SHIFTS.get("gaussian_noise").params["cifar"] == (0.04, 0.06, 0.08, 0.09, 0.10)


def _images(shape, n=6, seed=0):
    """Smooth random images in [0.1, 0.9] (structure at an eighth of the side)."""
    from scipy.ndimage import gaussian_filter

    x = gaussian_filter(np.random.default_rng(seed).random((n, *shape)), (0, 0, shape[1] / 8, shape[2] / 8))
    lo, hi = x.min(axis=(1, 2, 3), keepdims=True), x.max(axis=(1, 2, 3), keepdims=True)
    return 0.1 + 0.8 * (x - lo) / (hi - lo)


@pytest.mark.parametrize("name", IMAGE)
@pytest.mark.parametrize(("dataset", "shape"), [("digits", (1, 8, 8)), ("cifar10", (3, 32, 32))])
def test_image_corruptions_are_deterministic_bounded_and_grow_with_severity(name, dataset, shape):
    shift = SHIFTS.get(name)
    profile = DATASETS.get(dataset).shifts  # the severity table the dataset of that shape reads
    if not profile.applies(shift):
        pytest.skip(f"{dataset} is not evaluated on {name}")
    x = _images(shape)
    out = {}
    for sev in (1, 5):
        a = np.clip(shift.apply(x.copy(), profile.param(shift, sev), np.random.default_rng(3)), 0, 1)
        b = np.clip(shift.apply(x.copy(), profile.param(shift, sev), np.random.default_rng(3)), 0, 1)
        assert a.shape == x.shape and np.isfinite(a).all()
        np.testing.assert_array_equal(a, b)
        corr = np.corrcoef(a.reshape(len(a), -1), x.reshape(len(x), -1))[: len(a), len(a) :].diagonal()
        out[sev] = (np.abs(a - x).mean(), 1 - np.nan_to_num(corr).mean())  # change, decorrelation
    assert out[5][0] > 1e-3
    if name != "saturate":  # CIFAR-10-C's saturate desaturates at 1-2 and oversaturates at 3-5
        assert out[5][0] > out[1][0] or out[5][1] > out[1][1]


def test_stratified_subset_is_balanced_and_fixed():
    labels = np.repeat(np.arange(10), 36)
    idx = stratified_subset(labels, 100)
    assert len(idx) == 100 and np.all(np.diff(idx) > 0)
    assert np.bincount(labels[idx]).tolist() == [10] * 10
    np.testing.assert_array_equal(idx, stratified_subset(labels, 100))


def test_digits_shift_sets_shapes_labels_and_standardisation():
    data = load_dataset("digits")
    sets = shift_sets(data)
    corruptions = [s for s in sets if s.kind == "corruption"]
    assert len(corruptions) == 26 * 5
    assert {s.severity for s in corruptions} == {1, 2, 3, 4, 5}
    for s in sets:
        assert s.x.dtype == np.float32 and s.x.shape[1:] == (1, 8, 8)
        if s.kind == "ood":
            assert (s.y == -1).all() and s.severity == 0
        else:  # class-stratified: the declared set size, the same number per class
            per_class = data.shifts.shift_size // 10
            assert np.bincount(s.y, minlength=10).tolist() == [per_class] * 10
    mean, std = data.pixel_stats[0][0], data.pixel_stats[1][0]
    lo, hi = (0 - mean) / std, (1 - mean) / std
    assert all(s.x.min() >= lo - 1e-5 and s.x.max() <= hi + 1e-5 for s in sets)


def test_mnist1d_regeneration_reproduces_the_clean_dataset_exactly():
    from benchmarks.datasets.mnist1d_generator import (
        clean_stats,
        generate_raw,
        generator_args,
        mnist1d_arrays,
    )

    args = generator_args({})
    raw, y = generate_raw(args, 600, args.seed)
    mean, std = clean_stats(())
    x_ref, y_ref = mnist1d_arrays()
    np.testing.assert_allclose((raw - mean) / std, x_ref, atol=1e-5)
    np.testing.assert_array_equal(y, y_ref)


def test_mnist1d_knob_shift_changes_only_the_knob():
    data = load_dataset("mnist1d")
    shift = SHIFTS.get("iid_noise")
    x1, y1 = build_shift_set(data, shift, 1, 100)
    x5, y5 = build_shift_set(data, shift, 5, 100)
    np.testing.assert_array_equal(y1, y5)  # same seed at every severity: same examples
    assert x1.shape == (100, 1, 40) and np.bincount(y1).tolist() == [10] * 10
    assert np.abs(np.diff(x5, axis=-1)).mean() > np.abs(np.diff(x1, axis=-1)).mean()  # rougher


def test_shift_sets_are_cached_on_disk_and_reused(tmp_path, monkeypatch):
    data = load_dataset("digits")
    calls = []
    original = shift_sets_module.build_shift_set

    def counting(*args):
        calls.append(args[1].name)
        return original(*args)

    monkeypatch.setattr(shift_sets_module, "build_shift_set", counting)
    clear_memory()
    first = evaluation_sets(data, tmp_path)
    n_sets = len(first) - 3  # the clean train, val and test splits are not generated
    assert len(calls) == n_sets
    files = sorted((tmp_path / "shifts" / "digits").glob("*.npz"))
    assert len(files) == n_sets and not list((tmp_path / "shifts" / "digits").glob(".tmp-*"))
    mtimes = [f.stat().st_mtime_ns for f in files]

    clear_memory()  # a fresh worker: nothing in memory, everything on disk
    second = evaluation_sets(data, tmp_path)
    assert len(calls) == n_sets  # no set generated again
    assert [f.stat().st_mtime_ns for f in files] == mtimes
    for a, b in zip(first, second, strict=True):
        assert a[:3] == b[:3] and torch.equal(a[3], b[3]) and torch.equal(a[4], b[4])

    loads = []
    monkeypatch.setattr(np, "load", lambda *a, **k: loads.append(a))
    evaluation_sets(data, tmp_path)  # the same process: served from memory
    assert loads == [] and len(calls) == n_sets


def test_evaluate_rows_cover_every_set_and_phase_metric():
    data = load_dataset("digits")
    torch.manual_seed(0)
    model = build_arch("cnn_32x3", data.input_shape, 10)
    rows = evaluate(model, data, "dense")
    assert all(r["phase"] == "dense" and r["step"] is None for r in rows)
    corr = [r for r in rows if r["kind"] == "corruption"]
    assert len({r["eval_set"] for r in corr}) == 26
    per_set = {}
    for r in corr:
        per_set.setdefault((r["eval_set"], r["severity"]), set()).add(r["metric"])
    assert len(per_set) == 130
    assert all(m == {"accuracy", "loss", "recall", "ece", "nll", "brier"} for m in per_set.values())
    ood = {(r["eval_set"], r["metric"]) for r in rows if r["kind"] == "ood"}
    assert ood == {
        (s, m)
        for s in ("far_photo_patches", "near_letters")
        for m in ("auroc_msp", "auroc_energy", "fpr95_msp", "fpr95_energy")
    }
    summary = {r["metric"]: r["value"] for r in rows if r["kind"] == "summary"}
    acc = {(r["eval_set"], r["severity"]): r["value"] for r in corr if r["metric"] == "accuracy"}
    test_acc = next(r["value"] for r in rows if r["eval_set"] == "test" and r["metric"] == "accuracy")
    assert summary["mce"] == pytest.approx(1 - np.mean(list(acc.values())))
    assert summary["relative_mce"] == pytest.approx(summary["mce"] - (1 - test_acc))
