# %% [markdown]
# # Recall distortion and intensification
#
# Good et al. (NeurIPS 2022) report that pruning makes recall relatively worse for classes
# already below the model's accuracy and relatively better for those above it. Per class
# k: rho_k = r_k / acc (dense), rho_k' = r_k' / acc' (retrained), d_k = rho_k' - rho_k
# (stored with this sign; the authors' code uses the opposite one). A class is intensified
# when d_k (rho_k - 1) > 0; alpha is the share of intensified classes and b the slope of
# d_k on rho_k - 1. **This operational definition is reconstructed** from the abstract and
# the authors' public code (shared/design/claims.md).

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

sink = F.FigureSink(figures_dir, "intensification")

# %% [markdown]
# ## d_k against rho_k - 1 at the reference sparsity

# %%
for arch, dataset in res.scenarios():
    sink.add(
        F.recall_distortion(res, arch, dataset, ref),
        "recall_distortion",
        arch,
        dataset,
        f"Recall distortion at sparsity {ref}",
    )

# %% [markdown]
# ## alpha against sparsity

# %%
for arch, dataset in res.scenarios():
    sink.add(F.alpha_sparsity(res, arch, dataset), "alpha_sparsity", arch, dataset, "Intensification ratio")

# %% [markdown]
# ## alpha and b per pruner and sparsity (mean and 95% CI over seeds)

# %%
summary = D.distortion_summary(res)
keys = [*D.SCENARIO, *D.ENTRY, "sparsity"]
if summary.empty:
    print("no per-class recall in this store")
else:
    a = D.mean_ci(summary.dropna(subset=["alpha"]), keys, "alpha")
    b = D.mean_ci(summary.dropna(subset=["slope"]), keys, "slope")
    display(a.merge(b, on=keys, suffixes=("_alpha", "_slope")))

# %% [markdown]
# ## Claims tested

# %%
display(D.claims_for(res, "intensification", schema))

# %%
sink.close()
