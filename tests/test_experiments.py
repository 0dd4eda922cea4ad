"""The paper's experiment specs, the committed-results round trip, aggregation and saved
models."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from chaosrnn_utils import experiments as ex
from chaosrnn_utils import paths, sweeps, training
from chaosrnn_utils.sweeps import SweepSpec


@pytest.mark.parametrize("dataset", list(ex.PAPER_TAUS))
def test_paper_and_quick_tau_sweeps_are_valid(dataset):
    paper = ex.tau_sweep_spec(dataset, "paper").validate()
    s = paper.train_settings("lstm")
    assert (s.latent_dim, s.batch_size, s.batches_per_epoch, s.epochs, s.lr) == \
        (30, 32, 10, 3000, 1e-3)  # docs/paper-notes.md § Training
    assert s.seq_len == max(200, max(ex.PAPER_TAUS[dataset]))
    members = paper.member_configs()
    n_tau = len(ex.PAPER_TAUS[dataset])
    assert len(members) == (n_tau + 1) * 5 and paper.architectures == ["rnn", "plrnn", "lstm"]
    clip = [m for m in members if m.mode == "bptt"]
    assert len(clip) == 5 and all(m.clip_norm == 1.0 for m in clip)
    quick = ex.tau_sweep_spec(dataset, "quick").validate()
    assert quick.train_settings("rnn").epochs == ex.QUICK_EPOCHS[dataset]
    with pytest.raises(ValueError, match="unknown data set"):
        ex.tau_sweep_spec("lorentz")
    with pytest.raises(ValueError, match="unknown profile"):
        ex.tau_sweep_spec(dataset, "fast")


def test_paper_lorenz_grid_and_ablations():
    assert ex.PAPER_TAUS["lorenz"] == [5, 30, 50, 60, 70, 100, 200, 500, 1000]
    assert ex.tau_sweep_spec("lorenz", "paper").train_settings("rnn").seq_len == 1000
    for profile in ("quick", "paper"):
        spec = ex.ablation_spec(profile).validate()
        labels = ex.condition(pd.DataFrame([vars(m) for m in spec.member_configs()]))
        groups = set(labels.map(ex.condition_group))
        # quick: the key condition of each of the paper's ablations (no GTF: not in it)
        assert {"clipping (norm)", "clipping (value)", "truncated BPTT", "windowing",
                "random τ", "annealed τ", "sparse forcing"} | (
            {"generalised TF"} if profile == "paper" else set()) == groups
        # every condition has at least three seeds: no row rests on one run
        assert labels.value_counts().min() >= 3, labels.value_counts()
    paper = ex.ablation_spec("paper")
    assert paper.train_settings("lstm").seq_len == 1000
    assert sorted({m.clip_norm for m in paper.member_configs() if m.clip_norm}) == \
        [1.0, 10.0, 100.0, 1000.0]


@pytest.mark.parametrize("dataset", list(ex.PAPER_TAUS))
def test_medium_tau_sweep_is_the_paper_grid_at_a_tenth_of_the_training(dataset):
    spec = ex.tau_sweep_spec(dataset, "medium").validate()
    s = spec.train_settings("lstm")
    assert (s.latent_dim, s.batch_size, s.batches_per_epoch, s.epochs, s.seq_len, s.lr) == \
        (30, 32, 10, 300, 200, 1e-3)
    # the paper's τ that fit in a sequence of 200 steps (500 and 1 000 do not)
    assert spec.grid["tau"] == [t for t in ex.PAPER_TAUS[dataset] if t <= 200]
    assert spec.grid["seed"] == [0, 1, 2] and spec.eval_epochs == [30, 100]
    assert sum(m.mode == "bptt" for m in spec.member_configs()) == 3
    ablations = ex.ablation_spec("medium").validate()
    assert ablations.train_settings("lstm").epochs == 300
    assert ablations.eval_epochs == [30, 100]
    assert sorted({m.truncation for m in ablations.member_configs() if m.truncation}) == \
        [10, 30, 50, 100, 200]


def test_train_profile_commits_parts_and_continues_from_them(tmp_path, monkeypatch):
    """A chunk trains and commits its finished parts; a fresh checkout (no build folder)
    continues from them without training them again, and publishes the finished tables."""
    monkeypatch.setattr(paths, "BUILD_DIR", tmp_path / "build")
    monkeypatch.setattr(paths, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr(paths, "CACHE_DIR", tmp_path / "cache")
    spec = SweepSpec(name="tiny", dataset="lorenz", n_data=3000, architectures=["rnn", "lstm"],
                     grid={"tau": [5, 10], "seed": [0]}, n_generate=1000, eval_epochs=[1],
                     settings=dict(latent_dim=6, seq_len=20, batch_size=4, batches_per_epoch=2,
                                   epochs=3, dtype="float64"))
    monkeypatch.setattr(ex, "profile_specs", lambda profile: [spec])
    real_train, trained = training.train, []

    def counting(data, members, settings, **kw):
        trained.append(settings.model)
        if settings.model == "lstm" and interrupt:
            raise KeyboardInterrupt  # Ctrl-C during the second job
        return real_train(data, members, settings, **kw)

    monkeypatch.setattr(training, "train", counting)
    interrupt = True
    with pytest.raises(KeyboardInterrupt):
        ex.train_profile("medium", workers=1, progress=False)
    kept = tmp_path / "results" / "medium" / "parts" / "tiny"
    # each finished part with its final parameters (re-scoring needs no retraining)
    assert sorted(p.name for p in kept.iterdir()) == ["rnn.csv", "rnn.models.pt"]
    assert len(sweeps.load_job_models(kept / "rnn.models.pt")[0]) == 2
    assert ex.train_log("medium").exists()  # the interrupted chunk is logged too
    shutil.rmtree(tmp_path / "build")  # another machine: only the committed parts
    interrupt = False
    trained.clear()
    assert ex.train_profile("medium", workers=1, progress=False) == {"tiny": True}
    assert trained == ["lstm"]  # the committed rnn part was not trained again
    results = pd.read_csv(tmp_path / "results" / "medium" / "tiny.csv")
    curves = pd.read_csv(ex.curves_path("tiny", "medium"))
    assert len(results) == 4 and len(curves) == 8 and set(curves["eval_epoch"]) == {1, 3}
    assert sorted(p.name for p in kept.iterdir()) == ["lstm.csv", "lstm.models.pt", "rnn.csv",
                                                      "rnn.models.pt"]
    # re-scored from the kept parameters, no retraining: the held-out scores again, and the
    # paper protocol's beside them
    again = ex.rescore(spec, "medium")
    np.testing.assert_allclose(again["D_stsp"], results["D_stsp"], rtol=1e-12)
    np.testing.assert_allclose(again["PE1"], results["PE1"], rtol=1e-12)
    assert "D_stsp_paper" in again and again["D_H_paper"].notna().all() and len(again) == 4
    log = pd.read_csv(ex.train_log("medium"))
    assert list(log["complete"]) == [False, True] and (log["wall_s"] >= 0).all()
    with pytest.raises(ValueError, match="unknown sweep 'tinny'"):
        ex.train_profile("medium", only=["tinny"])


def _runs(**columns) -> pd.DataFrame:
    n = len(columns["D_stsp"])
    base = dict(architecture=["lstm"] * n, mode=["sparse"] * n, tau=30, tau_spread=0,
                tau_start=np.nan, clip_norm=np.nan, clip_value=np.nan, truncation=np.nan,
                window=np.nan, alpha=0.0, seed=range(n), D_H=0.1, diverged=False,
                frac_in_box=1.0)
    return pd.DataFrame({**base, **columns})


def test_run_status_names_every_kind_of_failure():
    df = _runs(D_stsp=[0.5, 8.4, 8.3, np.nan, 14.0, 9.0],
               diverged=[False, True, False, False, False, False],
               frac_in_box=[0.97, 1e-4, 8e-5, 1.0, 0.6, np.nan])
    assert list(ex.run_status(df)) == ["scored", "diverged", "left the box", "no score",
                                       "scored", "scored"]  # GMM (NaN box fraction): scored
    assert list(ex.run_status(df, min_in_box=0.7))[4] == "left the box"


def test_aggregate_scores_only_scored_runs_and_counts_failures_by_kind():
    df = _runs(tau=[5, 5, 30, 30, 30, 30, 100, 100, 100],
               D_stsp=[10.0, 12.0, 0.5, 0.7, 8.4, 15.0, 0.1, 8.3, np.nan],
               diverged=[False, False, False, False, True, False, False, False, False],
               frac_in_box=[1.0, 1.0, 0.96, 0.97, 0.9, 0.99, 0.8, 1e-4, 1.0])
    clip = _runs(D_stsp=[15.0, 17.0, 8.4], diverged=[False, False, True], clip_norm=1.0,
                 mode="bptt")
    agg = ex.aggregate(pd.concat([df, clip], ignore_index=True))
    assert list(agg["condition"]) == ["τ=5", "τ=30", "τ=100", "clip norm 1"]
    t = agg.set_index("condition")
    assert t.loc["τ=5", "D_stsp"] == 11.0
    assert t.loc["τ=5", "D_stsp_sem"] == pytest.approx(np.std([10, 12], ddof=1) / 2**0.5)
    # τ = 30: the diverged run (frozen at its last parameters, 8.4) is counted, not averaged
    assert t.loc["τ=30", ["n", "n_scored", "n_diverged", "n_left_box", "n_no_score"]].tolist() \
        == [4, 3, 1, 0, 0]
    assert t.loc["τ=30", "D_stsp"] == pytest.approx((0.5 + 0.7 + 15.0) / 3)
    # τ = 100: one scored run of three (one left the box with 8.3, one has no score)
    assert t.loc["τ=100", ["n_scored", "n_left_box", "n_no_score"]].tolist() == [1, 1, 1]
    assert not t.loc["τ=100", "majority_scored"] and t.loc["τ=30", "majority_scored"]
    # the best τ is chosen among mostly scored cells: τ = 100's single 0.1 does not count
    assert ex.best_tau(agg, "lstm") == (30, pytest.approx((0.5 + 0.7 + 15.0) / 3))
    # one failed seed of three moves the mean by 5, the median not: the robust statistic
    assert t.loc["τ=30", "D_stsp_median"] == 0.7
    assert ex.best_tau(agg, "lstm", statistic="median") == (30, 0.7)
    with pytest.raises(ValueError, match="statistic"):
        ex.best_tau(agg, "lstm", statistic="mode")
    assert ex.clip_levels(agg)["lstm"] == 16.0 and np.isnan(ex.clip_levels(agg)["rnn"])
    assert ex.failure_note(t.loc["τ=100"]) == "2/3 failed (1 left the box, 1 no score)"
    assert ex.failure_note(t.loc["τ=5"]) == ""
    assert list(ex.tau_curve(agg, "lstm")["tau"]) == [5, 30, 100]


def test_sweep_table_copies_the_table_and_reads_it_back(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "BUILD_DIR", tmp_path / "build")
    monkeypatch.setattr(paths, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr(paths, "CACHE_DIR", tmp_path / "cache")
    spec = SweepSpec(name="tiny", dataset="lorenz", n_data=3000, architectures=["lstm"],
                     grid={"tau": [5, 10], "seed": [0]}, n_generate=1000,
                     settings=dict(latent_dim=6, seq_len=20, batch_size=4, batches_per_epoch=2,
                                   epochs=3, dtype="float64"))
    with pytest.raises(FileNotFoundError, match="no committed results"):
        ex.sweep_table(spec, "quick", "committed")
    with pytest.raises(ValueError, match="unknown source"):
        ex.sweep_table(spec, "quick", "cache")
    trained = ex.sweep_table(spec, "quick", "train", workers=1, progress=False)
    assert (tmp_path / "results" / "quick" / "tiny.csv").exists()
    pd.testing.assert_frame_equal(ex.sweep_table(spec, "quick", "committed"), trained)
    # the models behind the table: rebuilt from the checkpoints, saved, loaded back
    chosen = ex.trained_members(spec, "quick", "lstm", lambda m: m.tau == 10)
    assert [m.tau for m, _ in chosen] == [10]
    ckpt = torch.load(tmp_path / "build" / "sweeps" / "quick" / "tiny" / "checkpoints" /
                      "lstm.pt", weights_only=False)
    torch.testing.assert_close(chosen[0][1].W[0], ckpt["model"]["W"][1])
    saved = ex.save_models(chosen, tmp_path / "models.pt")
    (cfg, model), = ex.load_models(saved)
    assert cfg == chosen[0][0]
    x = torch.randn(1, 3, 12, dtype=torch.float64)  # LSTM state (h, c)
    torch.testing.assert_close(model.step(x), chosen[0][1].step(x), rtol=0, atol=0)


def test_tau_sweep_panel_marks_failed_runs():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from chaosrnn_utils.plotting import plot_conditions, plot_tau_sweep

    df = _runs(tau=[5, 5, 30, 30, 100, 100], D_stsp=[10.0, 12.0, 0.5, 8.4, 9.0, np.nan],
               diverged=[False, False, False, True, False, False],
               frac_in_box=[1.0, 1.0, 1.0, 1.0, 1e-4, 1.0])
    agg = ex.aggregate(df)
    fig, (a, b) = plt.subplots(1, 2)
    plot_tau_sweep(a, {"lstm": ex.tau_curve(agg, "lstm")}, "D_stsp")
    texts = sorted(t.get_text() for t in a.texts)
    assert texts == ["1/2", "2/2 failed"]  # τ = 30 half scored (hollow), τ = 100 none
    # the medians over scored runs as crosses: τ = 5 → median(10, 12) = 11, τ = 30 → 0.5
    crosses = [ln for ln in a.lines if ln.get_marker() == "x" and len(ln.get_xdata())]
    assert len(crosses) == 1
    got = dict(zip(crosses[0].get_xdata(), crosses[0].get_ydata(), strict=True))
    assert got[5] == 11.0 and got[30] == 0.5 and np.isnan(got[100])
    plot_conditions(b, agg, "D_stsp")
    assert sorted(t.get_text() for t in b.texts) == ["1/2", "2/2 failed"]
    # every score axis names its convention
    assert a.get_ylabel() == b.get_ylabel() == "$D_{stsp}$ (ours)"
    authors = agg.rename(columns=lambda c: c.replace("D_stsp", "D_stsp_authors"))
    plot_conditions(b, authors, "D_stsp_authors")
    assert b.get_ylabel() == "$D_{stsp}$ (authors' convention)"
    plt.close(fig)


def test_quick_trains_the_smallest_grid_that_tests_the_asserted_claim():
    """The quick Lorenz sweep trains the architectures notebook 06 asserts at quick, on
    τ = 5, a τ in [τ_pred/4, 2 τ_pred] and the largest τ, with clipped BPTT: every cell
    claims.tau_effect compares; the ablations their key conditions, 3 seeds each."""
    from chaosrnn_utils import claims, paper

    spec = ex.tau_sweep_spec("lorenz", "quick").validate()
    asserted = {a for d, a in claims.EFFECT_EXPECTED["quick"] if d == "lorenz"}
    assert set(spec.architectures) == asserted
    taus = spec.grid["tau"]
    tau_pred = paper.dataset("lorenz")["tau_pred"]
    assert 5 in taus and any(tau_pred / 4 <= t <= 2 * tau_pred for t in taus)
    assert max(taus) == 200 and spec.grid["seed"] == [0, 1, 2]
    assert spec.train_settings("lstm").epochs == 300
    assert sum(m.mode == "bptt" and m.clip_norm == 1.0 for m in spec.member_configs()) == 3
    # the other data sets keep all three architectures (trained with --train-all)
    assert ex.tau_sweep_spec("roessler", "quick").architectures == ex.ARCHITECTURES
    abl = ex.ablation_spec("quick")
    labels = ex.condition(pd.DataFrame([vars(m) for m in abl.member_configs()]))
    assert labels.value_counts().to_dict() == {c: 3 for c in (
        "τ=30", "clip norm 1", "clip value 1", "TBPTT k=10", "window 50", "τ=30±10",
        "τ 1→46")}


@pytest.mark.parametrize("name, spec", [
    ("tau_sweep_lorenz", lambda: ex.tau_sweep_spec("lorenz", "quick")),
    ("ablations_lorenz", lambda: ex.ablation_spec("quick"))])
def test_committed_quick_tables_hold_the_quick_members(name, spec):
    """The committed quick tables have one row per member of the quick spec (what the
    stored notebooks 06 and 09 redraw and assert on)."""
    spec = spec()
    df = pd.read_csv(ex.results_dir("quick") / f"{name}.csv")
    want = sorted((a, m.mode, m.tau, m.seed) for a in spec.architectures
                  for m in spec.member_configs())
    have = sorted(zip(df["architecture"], df["mode"], df["tau"].astype(int),
                      df["seed"].astype(int), strict=True))
    assert have == want


def test_provenance_names_profile_commit_and_machine(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "RESULTS_DIR", tmp_path)
    results = pd.DataFrame({"git_commit": ["2b66301aaaa", "2b66301aaaa", "522ccc7bbbb"]})
    assert ex.provenance(results, "medium", "tau_sweep_x", "committed") == (
        "medium profile, commits 2b66301, 522ccc7, machine not recorded; redrawn from the "
        "committed results")
    (tmp_path / "medium" / "parts").mkdir(parents=True)
    pd.DataFrame([dict(sweep="tau_sweep_x", dataset="x", start="t", wall_s=900.0, workers=2,
                       cpus=2, cpu="AMD EPYC", complete=True),
                  dict(sweep="tau_sweep_x", dataset="x", start="t", wall_s=0.1, workers=2,
                       cpus=16, cpu="Other CPU", complete=True)]).to_csv(
        ex.train_log("medium"), index=False)
    assert ex.machine_of("tau_sweep_x", "medium") == "AMD EPYC (2 cores)"
    line = ex.provenance(results.iloc[:1], "medium", "tau_sweep_x", "train")
    assert line == "medium profile, commit 2b66301, AMD EPYC (2 cores); trained here"
