# %% [markdown]
# # Robustness: corruption damage per pruner and corruption type
#
# Accuracy drop from dense on every corrupted test set at sparsity 0.9, one heat map per dataset.

# %% tags=["parameters"]
results_dir = "results"  # the results store to read

# %%
from reports.notebook import *

data = open_results(results_dir)
for figure in F.corruption_heatmap(data):
    show(figure)
