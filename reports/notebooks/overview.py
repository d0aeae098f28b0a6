# %% [markdown]
# # Overview: accuracy, sparsity and the leaderboard
#
# Clean test accuracy of every pruner against sparsity, the leaderboard tables and every
# claim's verdict, read from a prunebench results store. Re-run with another
# `results_dir` (or glob filters) to look at other results.

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
from IPython.display import Markdown, display

from reports import data as D
from reports import figures as F
from reports import leaderboard as L

schema, res, ref = D.open_notebook(results_dir, archs, datasets, pruners)

sink = F.FigureSink(figures_dir, "overview")
prov = D.provenance(res)
display(
    Markdown(
        f"**{prov['cells']} cells** ({prov['ok']} ok, {prov['failed']} failed), "
        f"{prov['metric_rows']} metric rows; reference sparsity {ref}."
    )
)
for note in res.notes:
    print("note:", note)

# %% [markdown]
# ## Provenance

# %%
pd.Series({k: v for k, v in prov.items() if k != "failure_reasons"}, dtype=object).to_frame("value")

# %% [markdown]
# ## Accuracy vs sparsity
# Mean clean test accuracy of the retrained model over seeds, with 95% t-interval bands;
# sparsity 0 is the dense parent.

# %%
for arch, dataset in res.scenarios():
    sink.add(
        F.accuracy_sparsity(res, arch, dataset),
        "accuracy_sparsity",
        arch,
        dataset,
        "Accuracy vs sparsity (95% CI over seeds)",
    )

# %% [markdown]
# ## Leaderboard

# %%
import html

tables, overall, notes, _ = L.build_tables(res, schema)
for note in notes:
    print("note:", note)
if overall is not None:
    display(Markdown("### Overall (" + html.escape(overall.tie_test) + ")"))
    display(L.table_frame(overall))
for table in tables:
    display(Markdown("### " + html.escape(table.title)))  # names are data: never raw HTML
    display(L.table_frame(table))

# %% [markdown]
# ## Claims

# %%
if res.claims is None:
    print("no claims table in this results store")
else:
    display(
        res.claims[
            ["claim", "test", "arch", "dataset", "pruner", "sparsity", "estimate", "p", "q", "n", "verdict"]
        ]
    )

# %%
sink.close()
