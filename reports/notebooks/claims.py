# %% [markdown]
# # Claims: one primary verdict each, tested the way the papers tested them
#
# The primary verdicts of `harness analyze` under the rules of shared/design/claims.md 0b (the
# gates and controls, estimate, interval, n, SESOI, bootstrap stability, the n that would settle
# an open verdict), the intensification labels beside the paper's with alpha, beta, A/A_t and the
# t = 1 control, and the figures of each study.

# %% tags=["parameters"]
results_dir = "results"  # the results store to read

# %%
from reports.notebook import *

data = open_results(results_dir)
pd.DataFrame(data.primaries).reindex(
    columns=["title", "verdict", "point_verdict", "reason", "n", "estimate", "ci_low", "ci_high", "sesoi",
             "stability", "n_settle"]
) if data.primaries else None  # fmt: skip

# %% [markdown]
# ## Gates: the controls and regime checks of each primary verdict

# %%
pd.DataFrame(
    [{"claim": p["claim"], **g} for p in data.primaries for g in p.get("gates", [])]
) if data.primaries else None  # fmt: skip

# %% [markdown]
# ## Each analysis' figure, and the intensification labels

# %%
for analysis in with_figures():
    display(Markdown(f"### {analysis.title}"))
    show(analysis.figure(data))
data.labels  # noqa: B018
