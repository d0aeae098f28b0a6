# %% [markdown]
# # Leaderboard: the common grid, the budget, the standard recovery
#
# Every pruner at the grid's sparsities on every (arch, dataset), ranked only on columns every
# ranked entry has; collapsed models marked and never ranked; training epochs and FLOPs beside
# accuracy. Re-run with another `results_dir` to look at other results.

# %% tags=["parameters"]
results_dir = "results"  # the results store to read

# %%
from reports.notebook import *

data = open_results(results_dir)
masks = L.mask_column_of(data)
overall, grid = L.overall_table(data, masks)
table_frame(overall)

# %% [markdown]
# ## Accuracy against sparsity, and against the training budget

# %%
show(F.accuracy_sparsity(data))
show(F.budget_scatter(data))

# %% [markdown]
# ## Budget-matched view and entries shown apart

# %%
table_frame(L.budget_table(data, grid))

# %%
table_frame(L.apart_table(data, grid))

# %% [markdown]
# ## The standard recovery (global_magnitude at 0.9 within 1.5 points of dense)

# %%
table_frame(L.sanity_table(data))
