import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread():
    torch.set_num_threads(1)
    yield


@pytest.fixture(scope="session")
def smoke_results(tmp_path_factory):
    """The smoke preset run once into a temporary results dir (shared by the e2e tests)."""
    from harness.runner import run_all

    root = tmp_path_factory.mktemp("smoke")
    summary = run_all("smoke", str(root), workers=2, echo=lambda *_: None)
    return root, summary
