import pytest

from benchmarks.archs import ARCHS
from benchmarks.datasets import DATASETS
from core.registry import Registry, UnknownNameError
from pruners import PRUNERS


def test_unknown_name_lists_valid_names_and_suggests_closest():
    with pytest.raises(UnknownNameError) as err:
        PRUNERS.get("global_magnitud")
    message = str(err.value)
    assert "did you mean 'global_magnitude'?" in message
    for name in PRUNERS:
        assert name in message


def test_duplicate_and_badly_named_entries_are_rejected():
    reg: Registry = Registry("thing")
    reg.register("a_b")(object)
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("a_b")(object)
    with pytest.raises(ValueError, match="snake_case"):
        reg.register("Bad-Name")(object)


def test_glob_listing():
    assert PRUNERS.names("*magnitude") == ["global_magnitude", "layer_magnitude"]
    assert set(ARCHS.names("mlp_*")) >= {"mlp_256x2"}


@pytest.mark.parametrize("registry", [PRUNERS, ARCHS, DATASETS])
def test_registries_are_populated_with_snake_case_names(registry):
    assert len(registry) >= 3
    assert all(n == n.lower() and " " not in n for n in registry)
