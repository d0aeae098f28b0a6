# %% [markdown]
# # Claims: one primary verdict each, tested the way the papers tested them
#
# The primary verdicts of `harness analyze` (estimate, interval, n, power, the paper's number),
# the intensification labels beside the paper's, and the figures of each study.

# %% tags=["parameters"]
results_dir = "results"  # the results store to read

# %%
from reports.notebook import *

data = open_results(results_dir)
pd.DataFrame(data.primaries)[
    ["title", "verdict", "n", "estimate", "ci_low", "ci_high", "p", "power", "stability"]
] if data.primaries else None

# %% [markdown]
# ## Intensification (Good et al. 2022): labels by compression ratio

# %%
show(F.intensification_alpha(data))
data.labels  # noqa: B018

# %% [markdown]
# ## Generalization and stability (Bartoldson et al. 2020)

# %%
show(F.stability_generalization(data))

# %% [markdown]
# ## Mask sanity controls (Frankle et al. 2021)

# %%
show(F.mask_sanity(data))
