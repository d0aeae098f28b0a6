# %% [markdown]
# # Corruptions, OOD detection and calibration
#
# Accuracy on corrupted test sets (type x severity), OOD detection AUROC (max-softmax score)
# and expected calibration error against sparsity. Figures are skipped, with a note, when
# the store holds no such metrics.

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

sink = F.FigureSink(figures_dir, "robustness")

# %% [markdown]
# ## Corruption accuracy at the reference sparsity

# %%
for arch, dataset in res.scenarios():
    sink.add(
        F.corruption_heatmaps(res, arch, dataset, ref),
        "corruption_heatmap",
        arch,
        dataset,
        f"Corruption accuracy at sparsity {ref}",
    )

# %% [markdown]
# ## OOD AUROC and ECE against sparsity

# %%
for arch, dataset in res.scenarios():
    sink.add(
        F.ood_and_calibration(res, arch, dataset),
        "ood_calibration",
        arch,
        dataset,
        "OOD AUROC and ECE vs sparsity",
    )

# %% [markdown]
# ## Mean corruption accuracy per pruner and sparsity

# %%
corr = D.per_cell_mean(D.corruption_accuracy(res))
if corr.empty:
    print("no corruption accuracy in this store")
else:
    display(D.mean_ci(corr, [*D.SCENARIO, *D.ENTRY, "sparsity"]))

# %%
sink.close()
