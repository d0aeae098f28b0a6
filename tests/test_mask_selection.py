"""The lowest-k selection behind every mask: the first k of a stable ascending sort, ties by position."""

import torch

from pruners.masks import _lowest_k_mask


def test_lowest_k_equals_the_stable_sort_with_ties_and_masked_entries():
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        n = int(torch.randint(1, 50, (1,), generator=g))
        scores = torch.randint(0, 5, (n,), generator=g).double()  # many ties
        scores[torch.rand(n, generator=g) < 0.2] = float("-inf")  # already masked entries
        for k in range(n + 1):
            expected = torch.ones(n)
            expected[torch.argsort(scores, stable=True)[:k]] = 0.0
            assert torch.equal(_lowest_k_mask(scores, k), expected), (scores, k)


def test_lowest_k_breaks_ties_by_position():
    mask = _lowest_k_mask(torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0]), 3)
    assert mask.tolist() == [0.0, 0.0, 1.0, 1.0, 0.0]
