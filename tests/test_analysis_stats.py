"""Multiple-testing correction of the secondary rows against statsmodels and by hand."""

from __future__ import annotations

import math

import numpy as np

from analysis.evidence import bh


def test_bh_matches_statsmodels_and_keeps_nan():
    from statsmodels.stats.multitest import multipletests

    p = np.array([0.01, 0.04, 0.03, 0.2, 0.005, np.nan, 0.5])
    q = bh(p)
    ref = multipletests(p[np.isfinite(p)], method="fdr_bh")[1]
    assert np.allclose(q[np.isfinite(p)], ref)
    assert math.isnan(q[5])
    assert np.allclose(bh([0.01, 0.02]), [0.02, 0.02])  # by hand: q_(i) = min_{j>=i} m p_(j) / j
    assert np.isnan(bh([np.nan])).all()
