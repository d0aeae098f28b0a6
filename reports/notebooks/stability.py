# %% [markdown]
# # The generalisation-stability tradeoff
#
# Bartoldson et al. (NeurIPS 2020): when pruning happens during training, less stable
# pruning (a larger immediate accuracy drop) is followed by better generalisation.
# Instability of an event I = (acc_pre - acc_post) / acc_pre; a run's stability is the mean
# of 100 (1 - I) over its events; one point per run (seed x schedule).

# %% tags=["parameters"]
results_dir = "results"  # the results store to read
figures_dir = None  # the report builder sets this: save every figure (PNG + SVG) here
archs = None  # glob filters, e.g. ["mlp_*"]; None keeps all
datasets = None
pruners = None

# %%
# ruff: noqa: E402
import pathlib
import sys

try:
    import reports  # noqa: F401
except ImportError:  # opened from a checkout without `pip install -e .`: find the repo root
    _here = pathlib.Path.cwd().resolve()
    _roots = [p for p in [_here, *_here.parents] if (p / "reports" / "data.py").exists()]
    sys.path.insert(0, str(_roots[0] if _roots else _here))

import pandas as pd
from IPython.display import display

from reports import data as D
from reports import figures as F

schema, res, ref = D.open_notebook(results_dir, archs, datasets, pruners)

sink = F.FigureSink(figures_dir, "stability")

# %%
runs = D.stability_runs(res)
if runs.empty:
    sink.add("no stability-study runs in this store: stability figures skipped", "stability")
for arch, dataset in res.scenarios("stability"):
    sink.add(
        F.stability_vs_accuracy(res, arch, dataset),
        "stability",
        arch,
        dataset,
        "Run stability vs best test accuracy",
    )

# %% [markdown]
# ## Correlation per (arch, dataset)

# %%
rows = []
for (arch, dataset), g in runs.groupby(D.SCENARIO):
    rows.append({"arch": arch, "dataset": dataset, **D.stability_correlation(g)})
display(pd.DataFrame(rows) if rows else "no runs")

# %% [markdown]
# ## Claims tested

# %%
display(D.claims_for(res, "stability", schema))

# %%
sink.close()
