# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,jupytext,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 07 · What a good and a bad τ reconstruct: Lorenz-63 by an LSTM (Fig. 3)
#
# Numbers like $D_{stsp}$ summarise a whole attractor; this notebook shows what they mean.
# The LSTMs of notebook 06's Lorenz sweep trained with a too short interval
# ($\tau = 5$: the model never learns to run freely for long), with the best one (near
# $\tau_{pred}$) and with a too long one ($\tau = 200$: exploding-gradient regime) are run
# freely from a data-inferred state $z_1 = B^{+}x_1$, and drawn in 3-D beside the true
# attractor; at each $\tau$ the scored run (`experiments.run_status`) with the lowest
# $D_{stsp}$ (so even the best run of a bad $\tau$ is shown); the best $\tau$ is the one with
# the lowest median, as in notebook 06's check. In the paper: $\tau = 5$ collapses onto a
# loop, $\tau = 30$ overlaps the butterfly, $\tau = 200$ is a distorted blob.
#
# The models come from notebook 06's sweep (same profile): `source = "train"` runs or resumes
# that sweep (nothing to do when notebook 06 ran) and saves the three models to
# `data/results/<profile>/lorenz_lstm_attractors.pt`; `source = "committed"` reads that file.
#
# The committed results of every profile, redrawn from their tables, are on the book's
# results pages ([quick](../docs/results-quick.md), [medium](../docs/results-medium.md),
# [paper](../docs/results-paper.md)); every number beside the paper's:
# [the comparison](../docs/comparison.md).

# %% tags=["parameters"]
profile = "quick"  # "quick", "medium" or "paper": which Lorenz sweep the models come from
source = "committed"  # "committed" (saved models) or "train" (sweep of notebook 06, resumed)
workers = 2  # processes, if the sweep still has to train

# %%
# NBVAL_IGNORE_OUTPUT
import matplotlib.pyplot as plt

import chaosrnn_utils as cu
from chaosrnn_utils import claims, plotting, sweeps
from chaosrnn_utils import experiments as ex

cu.setup(profile, quick={}, paper={})
spec = ex.tau_sweep_spec("lorenz", profile)
results = ex.sweep_table(spec, profile, source, workers=workers)
t_best = claims.tau_effect(results, "lorenz", "lstm", profile)["best_tau"]
taus = [5, t_best, 200]
best_seed = claims.attractor_seeds(results, taus)
saved = ex.results_dir(profile) / "lorenz_lstm_attractors.pt"
if source == "train":
    models = ex.trained_members(spec, profile, "lstm", lambda m: m.mode == "sparse"
                                and m.tau in taus and m.seed == best_seed[m.tau])
    ex.save_models(models, saved)
models = {m.tau: model for m, model in ex.load_models(saved)}
commit = str(results["git_commit"].iloc[0])[:10]
print(f"LSTM at τ = {taus} (best τ of the sweep: {t_best}), seeds {best_seed}; "
      f"commit {commit}")

# %% [markdown]
# ## The reconstructions
#
# Each model runs freely for 20 000 steps from the state inferred from the first test point,
# and is scored on a 100 000-step run as in notebook 06. What to see: with $\tau = 5$ the
# model only ever had to predict five steps ahead, and its free run settles on a fixed point
# or a small loop ($\lambda_{\max} < 0$); near $\tau_{pred}$ it fills both wings of the
# butterfly with a positive exponent; with $\tau = 200$ the gradients carried products of
# up to 200 Jacobians, training stalled, and the run collapses again (onto a fixed point or a
# cycle, λ_max ≤ 0 up to its error). The panels share the data's box, so a run that is too
# small or too large shows as such.

# %%
x_train, x_test = sweeps.load_sweep_data(spec)
n_show = 20_000
runs = {tau: cu.generate_free_run(models[tau], x_test, n_show)[0] for tau in taus}
scores = {tau: cu.evaluate(models[tau], x_test, n_generate=100_000)[0] for tau in taus}

fig = plotting.plot_reconstructions(x_test[:n_show], runs, scores,
                                    title=f"free runs from $B^+x_1$ · profile {profile} · "
                                          f"commit {commit}")
plotting.save_figure(fig, "07_lorenz_attractors"
                     + ("" if profile == "quick" else f"_{profile}"))
plt.show()

# %% [markdown]
# ## Checks
#
# The model trained near $\tau_{pred}$ is on a chaotic attractor ($\lambda_{\max} > 0$) that
# fills the data's box (more than half the points counted) and scores at least 10× better in
# $D_{stsp}$ than both others.

# %%
# NBVAL_IGNORE_OUTPUT
good = scores[t_best]
assert good["lambda_max"] > 0 and good["frac_in_box"] > 0.5, good
assert all(good["D_stsp"] * 10 <= scores[t]["D_stsp"] for t in (5, 200)), scores
for tau in taus:
    s = scores[tau]
    print(f"τ = {tau:>3}: D_stsp {s['D_stsp']:.3f}, D_H {s['D_H']:.3f}, "
          f"λ_max {s['lambda_max']:+.4f}, counted {s['frac_in_box']:.2f}")
