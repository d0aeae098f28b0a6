# %% [markdown]
# # Retraining recipes
#
# Accuracy after learning-rate rewinding minus accuracy after fine-tuning, paired by
# (arch, dataset, pruner, sparsity, seed): the same pruned model retrained two ways.

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

sink = F.FigureSink(figures_dir, "retrain_recipe")

# %%
for arch, dataset in res.scenarios():
    sink.add(
        F.recipe_difference(res, arch, dataset),
        "recipe_difference",
        arch,
        dataset,
        "lr_rewind minus finetune",
    )

# %% [markdown]
# ## Difference in points (mean and 95% CI over seeds)

# %%
diff = D.recipe_difference(res)
if diff.empty:
    print("no pairs of recipes in this store")
else:
    display(D.mean_ci(diff.assign(value=100 * diff["value"]), [*D.SCENARIO, "pruner", "sparsity"]))

# %% [markdown]
# ## Claims tested

# %%
display(D.claims_for(res, "retrain_recipe", schema))

# %%
sink.close()
