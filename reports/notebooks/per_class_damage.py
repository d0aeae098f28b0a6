# %% [markdown]
# # Per-class damage
#
# Hooker et al. (2019) compare the per-class recall of populations of dense and pruned
# models and count the classes that pruning changes significantly (Welch's t-test, BH).
# Below: the change in each class's recall against the dense parent, and the tested claim.

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

sink = F.FigureSink(figures_dir, "per_class_damage")

# %%
for arch, dataset in res.scenarios():
    sink.add(
        F.recall_change_heatmap(res, arch, dataset),
        "recall_change",
        arch,
        dataset,
        "Per-class recall change vs the dense parent",
    )

# %% [markdown]
# ## Spread of per-class recall change (points) per pruner and sparsity

# %%
change = D.per_class_recall_change(res)
if change.empty:
    print("no per-class recall in this store")
else:
    per_class = change.groupby([*D.SCENARIO, *D.ENTRY, "sparsity", "class"], as_index=False)["value"].mean()
    spread = per_class.groupby([*D.SCENARIO, *D.ENTRY, "sparsity"])["value"].agg(["min", "mean", "max"])
    display((100 * spread).round(2))

# %% [markdown]
# ## Claims tested

# %%
display(D.claims_for(res, "per_class_damage", schema))

# %%
sink.close()
