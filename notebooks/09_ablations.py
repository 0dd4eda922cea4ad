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
# # 09 · Ablations: what else bounds the gradients, and does it help? (Fig. 5)
#
# Sparse forcing does two things at once: it bounds the Jacobian products in the gradient to
# at most $\tau$ factors (notebook 05), and it keeps the trajectories on the data between
# forcing times. The paper's ablations on Lorenz-63 (LSTM) take the alternatives one by one:
#
# - **gradient clipping** by norm or by value, $c \in \{1, 10, 100, 1000\}$: bounds
#   $\|\nabla_\theta L\|$ but not the ill-conditioning of the loss landscape;
# - **truncated BPTT** (gradient cut every $k$ steps, no forcing): bounds the products like
#   forcing but lets the trajectory drift off the data;
# - **windowing** (restart from zeros every $k$ steps);
# - **random τ** drawn uniformly from $[\tau - \Delta\tau, \tau + \Delta\tau]$ per batch, and
#   **annealed τ** (from 1 to 46 over training);
# - and, beyond the paper, **generalised teacher forcing**
#   $\tilde z_t = \alpha B^{+}x_t + (1-\alpha) z_t$ at every step (Hess et al., 2023).
#
# The paper: clipping 7–13 and TBPTT 9.8–12.3 against 0.062 for sparse forcing at $\tau = 30$;
# windowing 7.3–12.2; $\Delta\tau = 10$ about as good (0.021), $\Delta\tau \ge 50$ fails;
# annealing 1 → 46 gives 0.077 ± 0.063 (no gain).

# %% tags=["parameters"]
profile = "quick"  # "quick" (sequence length 200, 3 seeds, 300 epochs) or "paper"
seed = 0  # unused: the seeds are part of the sweep
source = "committed"  # "committed" (saved results) or "train" (run or resume the sweep)
workers = 2  # processes training side by side

# %%
# NBVAL_IGNORE_OUTPUT
import matplotlib.pyplot as plt
import pandas as pd

import chaosrnn_utils as cu
from chaosrnn_utils import experiments as ex
from chaosrnn_utils import paper, plotting

pd.set_option("display.precision", 3)
pd.set_option("display.width", 140)
plotting.use_style()
cu.select_profile(profile, quick={}, paper={})
spec = ex.ablation_spec(profile)
results = ex.obtain(spec, profile, source, workers=workers)
agg = ex.aggregate(results, metrics=("D_stsp", "D_H", "lambda_max"))
agg["group"] = agg["condition"].map(ex.condition_group)
commit = str(results["git_commit"].iloc[0])[:10]
agg[["group", "condition", "D_stsp", "D_stsp_sem", "D_H", "lambda_max", "frac_in_box", "n",
     "n_diverged"]]

# %%
ref_runs = results[(results["mode"] == "sparse") & (results["tau"] == 30)
                   & (results["tau_spread"] == 0) & results["tau_start"].isna()]
ref = float(ref_runs["D_stsp"].median())
fig, ax = plt.subplots(figsize=(14, 4.5))
order = agg.sort_values(["group", "condition"], kind="stable").reset_index(drop=True)
plotting.plot_conditions(ax, order, "D_stsp", reference=ref,
                         title=f"Lorenz-63, LSTM · profile {profile} · commit {commit}")
fig.tight_layout()
plotting.save_figure(fig, "09_ablations")
plt.show()

# %% [markdown]
# ## Headline numbers and checks
#
# Every condition is summarised by its median $D_{stsp}$ over scored runs (three seeds at
# the quick budget: one stalled run must not decide a row; the figure shows mean ± SEM), and
# the reference is that of sparse forcing at $\tau = 30$. As in the paper, every clipping
# threshold (norm and value) and every truncation length must score at least 10× worse.

# %%
# NBVAL_IGNORE_OUTPUT
headline = (agg.groupby("group")["D_stsp_median"].agg(["min", "max"])
            .rename(columns={"min": "best D_stsp", "max": "worst D_stsp"}))
headline["vs sparse τ=30 (median)"] = headline["best D_stsp"] / ref
print(f"sparse forcing τ = 30: median D_stsp {ref:.3f} over {len(ref_runs)} seeds")
headline

# %%
# NBVAL_IGNORE_OUTPUT
bounded = agg[agg["group"].isin(["clipping (norm)", "clipping (value)", "truncated BPTT"])]
assert len(bounded) >= 6 and (bounded["D_stsp_median"] >= 10 * ref).all(), \
    bounded[["condition", "D_stsp_median"]]
def d_stsp(label: str) -> float:
    return float(agg.loc[agg["condition"] == label, "D_stsp_median"].iloc[0])


# the paper's numbers (paper.json, Fig. 5); the failed range of Lorenz-63 from the references
# (notebook 06): ours in our convention, the paper's in the authors'. Rows whose both sides
# fail read "both failed"; Δτ = 10 matches when it is as good as fixed τ (≤ 3× the
# reference); annealing when it succeeds (< 1) without beating fixed τ
P = paper.group("ablations")
thr = ex.failure_thresholds("lorenz", profile)
fail = dict(failed_above=thr["D_stsp"], paper_failed_above=thr["D_stsp_authors"])
tr = paper.text_range
claims = {"clipping (norm)": (tr(P["clipping_D_stsp"]), None),
          "clipping (value)": (tr(P["clipping_D_stsp"]), None),
          "truncated BPTT": (tr(P["tbptt_D_stsp"]), None),
          "windowing": (tr(P["windowing_D_stsp"]), None),
          "random τ": (f"Δτ=10: {P['random_tau_spread10_D_stsp']}", d_stsp("τ=30±10") <= 3 * ref),
          "annealed τ": ("{} ± {}".format(*P["annealed_tau_D_stsp"]),
                         0.5 * ref <= d_stsp("τ 1→46") < 1),
          "generalised TF": ("not in paper", None)}
summary = [dict(quantity=f"ablation: {g}, D_stsp range", paper=p,
                reproduced=f"{headline.loc[g, 'best D_stsp']:.2f}–"
                           f"{headline.loc[g, 'worst D_stsp']:.2f}",
                match=None if m is None else bool(m), profile=profile,
                convention="ours (paper: authors')",
                note=f"medians over scored runs; sparse τ=30: {ref:.3f}" + (
                      "" if profile == "paper" else
                      "; quick: 3 seeds, 300 epochs, sequence length 200"),
                **(fail if g not in ("random τ", "generalised TF") else {}))
           for g, (p, m) in claims.items() if g in headline.index]
cu.record_summary("09_ablations", summary)
print(f"clipping and TBPTT: ≥ {bounded['D_stsp_median'].min() / ref:.0f}× the sparse-forcing "
      "reference")
