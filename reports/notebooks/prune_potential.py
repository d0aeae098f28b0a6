# %% [markdown]
# # Prune potential and excess error
#
# Liebenwein et al. (MLSys 2021): the prune potential of a pruner on a test distribution is
# the largest sparsity whose model's error is at most the dense parent's + 0.5 points; on
# shifted data it is said to be much lower. Excess error: the extra error a pruned model
# has on shifted data beyond the dense model's.

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

from IPython.display import display

from reports import data as D
from reports import figures as F

schema, res, ref = D.open_notebook(results_dir, archs, datasets, pruners)

sink = F.FigureSink(figures_dir, "prune_potential")

# %%
for arch, dataset in res.scenarios():
    sink.add(
        F.prune_potential(res, arch, dataset),
        "prune_potential",
        arch,
        dataset,
        "Prune potential per test distribution",
    )

# %% [markdown]
# ## Prune potential (mean and 95% CI over seeds)

# %%
pp = D.prune_potential(res)
display(D.mean_ci(pp, [*D.SCENARIO, *D.ENTRY, "distribution"]) if not pp.empty else "no accuracy stored")

# %% [markdown]
# ## Excess error on shifted data (points)

# %%
ex = D.excess_error(res)
if ex.empty:
    print("no shifted test sets in this store: excess error not computed")
else:
    display(D.mean_ci(ex.assign(value=100 * ex["value"]), [*D.SCENARIO, *D.ENTRY, "sparsity"]))

# %% [markdown]
# ## Claims tested

# %%
display(D.claims_for(res, "prune_potential", schema))

# %%
sink.close()
