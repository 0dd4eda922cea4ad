"""The evaluation protocols (heldout, paper), the authors' GMM layout against their ``klz`` on
shared golden arrays, the sanity rule, the committed references, the PLRNN initialisation of
the paper and the sweeps' kept parameters."""

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from chaosrnn_utils import experiments as ex
from chaosrnn_utils import metrics, paths, sweeps
from chaosrnn_utils.forcing import MemberConfig
from chaosrnn_utils.models import PLRNN, make_model

GOLDEN = Path(os.environ.get("CHAOSRNN_GOLDEN_DIR") or paths.ROOT.parent / "shared" / "golden")
NEED_GOLDEN = pytest.mark.skipif(not (GOLDEN / "authors_gmm.json").exists(),
                                 reason=f"no golden GMM values in {GOLDEN}")
N_SEEDS = 10  # our Monte-Carlo draws per case; the authors' file gives 20 seeds


@pytest.fixture(scope="module")
def gmm_golden():
    return np.load(GOLDEN / "gmm_cases.npz"), json.loads((GOLDEN / "authors_gmm.json").read_text())


@NEED_GOLDEN
@pytest.mark.parametrize("case", ["later_segment", "noisy_0.3", "shifted_0.5", "white_noise",
                                  "fixed_point_mean"])
def test_gmm_authors_layout_matches_their_klz(gmm_golden, case):
    """Their estimator's mean over 20 seeds against ours over N_SEEDS seeds: both are Monte-Carlo
    means of the same quantity, so the difference has standard error
    s·sqrt(1/20 + 1/N_SEEDS) with s their seed-to-seed std (ours has the same sampling error;
    float32 against float64 adds far less). Allowed: 4 standard errors."""
    arrays, authors = gmm_golden
    ref = authors[case]
    runs = [metrics.state_space_divergence_gmm(arrays["true"], arrays[case], layout="authors",
                                               seed=s, return_dropped=True)
            for s in range(N_SEEDS)]
    ours = np.mean([r[0] for r in runs])
    se = ref["klz_std_20_seeds"] * np.sqrt(1 / 20 + 1 / N_SEEDS)
    assert abs(ours - ref["klz_mean_20_seeds"]) < 4 * se, (ours, ref)
    # the dropped ("outlier") fraction: binomial error of 1 000·N_SEEDS and 1 000·20 draws
    p = ref["outlier_ratio_mean"]
    dropped = np.mean([r[1] for r in runs])
    se_p = np.sqrt(max(p, 1e-4) * (1 / (1000 * N_SEEDS) + 1 / 20_000))
    assert abs(dropped - p) < 4 * se_p


@NEED_GOLDEN
def test_gmm_authors_layout_floor_of_the_eeg_file(gmm_golden):
    """In the authors' layout the EEG file's own last 5 000 rows score about 11 against its
    first 5 000 (golden README): a floor far above the paper's EEG values (0.05–0.8)."""
    arrays, _ = gmm_golden
    v = np.mean([metrics.state_space_divergence_gmm(arrays["true"], arrays["later_segment"],
                                                    layout="authors", seed=s) for s in range(5)])
    assert 10.0 < v < 12.3


def test_gmm_layouts_read_different_rows():
    """authors: the first n_points rows of each series; strided: points over the whole series.
    A generated series whose first rows are the data's and whose rest is far away scores
    exactly 0 in the authors' layout (p_gen = p_true) and far above 0 strided."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((400, 6))
    gen = np.concatenate([x[:100], x[100:] + 5.0])
    a = metrics.state_space_divergence_gmm(x, gen, n_points=100, n_samples=200,
                                           layout="authors")
    s = metrics.state_space_divergence_gmm(x, gen, n_points=100, n_samples=200)
    assert a == 0.0
    assert s > 10.0
    with pytest.raises(ValueError, match="layout"):
        metrics.state_space_divergence_gmm(x, gen, layout="first")


def test_gmm_authors_layout_drops_zero_likelihood_samples():
    """A generated cloud 10 units from the data: p_true underflows float32 at every sample,
    all are dropped and the score is NaN; at 1 unit none is."""
    rng = np.random.default_rng(2)
    x = 0.01 * rng.standard_normal((50, 10))
    far, dropped = metrics.state_space_divergence_gmm(x, x + 10.0, n_samples=100,
                                                      layout="authors", return_dropped=True)
    assert np.isnan(far) and dropped == 1.0
    near, dropped = metrics.state_space_divergence_gmm(x, x + 1.0 / np.sqrt(10), n_samples=100,
                                                       layout="authors", return_dropped=True)
    assert np.isfinite(near) and dropped == 0.0


def test_protocol_target_and_proxy():
    x_train, x_test = np.arange(80.0)[:, None], np.arange(80.0, 100.0)[:, None]
    np.testing.assert_array_equal(metrics.protocol_target(x_train, x_test, "heldout"), x_test)
    whole = metrics.protocol_target(x_train, x_test, "paper")
    np.testing.assert_array_equal(whole[:, 0], np.arange(100.0))
    np.testing.assert_array_equal(metrics.sanity_proxy(x_train, x_test, "heldout"), x_train)
    np.testing.assert_array_equal(metrics.sanity_proxy(x_train, x_test, "paper")[:, 0],
                                  np.arange(50.0, 100.0))
    with pytest.raises(ValueError, match="protocol"):
        metrics.protocol_target(x_train, x_test, "authors")


def test_power_spectrum_distance_drops_the_remainder():
    """9 259 rows (the EEG file's length) in 50 chunks: the authors' code cannot reshape them;
    ours drops the last 9 259 mod 50 = 9 rows, so the score equals that of the first 9 250."""
    rng = np.random.default_rng(3)
    x = np.cumsum(rng.standard_normal((9259, 2)), axis=0)
    y = np.cumsum(rng.standard_normal((9259, 2)), axis=0)
    for conv in ("ours", "authors"):
        assert metrics.power_spectrum_distance(x, y, convention=conv) == \
            metrics.power_spectrum_distance(x[:9250], y[:9250], convention=conv)


# ---------------------------------------------------------------------------- PLRNN init


def test_plrnn_authors_init_distribution():
    """init="authors": the diagonal A ~ U(−1/√M, 1/√M) (the paper: PLRNN weights uniform in
    ±1/√M). Kolmogorov–Smirnov distance of 200 members × 30 entries from that uniform below
    the 0.1 % critical value 1.95/√n; W, h and B are the same draws as init="ours"."""
    M, seeds = 30, list(range(200))
    a = PLRNN(M, 3, n_models=len(seeds), seeds=seeds, dtype=torch.float64, init="authors")
    o = PLRNN(M, 3, n_models=len(seeds), seeds=seeds, dtype=torch.float64)
    v = np.sort(a.A.detach().numpy().ravel())
    r = M**-0.5
    assert v.min() >= -r and v.max() <= r
    cdf = (v + r) / (2 * r)
    n = v.size
    ks = max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n))
    assert ks < 1.95 / np.sqrt(n)
    assert abs(v.mean()) < 4 * (r / np.sqrt(3)) / np.sqrt(n)
    ours = o.A.detach().numpy()
    assert ours.min() >= 0.5 and ours.max() <= 0.9
    for name in ("W", "h", "B"):
        torch.testing.assert_close(getattr(a, name), getattr(o, name), rtol=0, atol=0)
    assert a.member(3).init == "authors" and "init=authors" in repr(a)
    with pytest.raises(ValueError, match="init"):
        PLRNN(M, 3, init="torch")
    make_model("lstm", 8, 2, init="authors")  # one scheme there: accepted, no effect


# ---------------------------------------------------------------------------- sanity rule


def _refs(proxy: float, frac: float = 0.9) -> pd.DataFrame:
    rows = {"untrained rnn": 18.0, "untrained plrnn": 19.0, "untrained lstm": 20.0,
            "fixed point at the mean": 18.0, "white noise": 1.0, "data": 0.0,
            "sanity proxy": proxy}
    return pd.DataFrame({"D_stsp": rows, "frac_in_box": {k: frac for k in rows},
                         "D_stsp_authors": rows, "D_H": rows, "D_H_authors": rows}
                        ).rename_axis("reference")


def test_sanity_check_rule():
    """Threshold ⅓ · 18 = 6; the proxy passes below ½ · 6 = 3 with ≥ 50 % in the box."""
    ok = ex.sanity_check(_refs(2.9))
    assert ok["threshold"] == pytest.approx(6.0) and ok["passes"]
    assert not ex.sanity_check(_refs(3.1))["passes"]
    assert not ex.sanity_check(_refs(1.0, frac=0.43))["passes"]
    assert ex.sanity_check(_refs(1.0, frac=0.43), "D_stsp_authors")["passes"]
    with pytest.raises(KeyError, match="sanity proxy"):
        ex.sanity_check(_refs(1.0).drop(index="sanity proxy"))


def test_aggregate_not_scorable_and_protocol_view():
    df = pd.DataFrame({"architecture": ["rnn"] * 2, "mode": ["sparse"] * 2, "tau": [30, 30],
                       "diverged": [False, False], "frac_in_box": [0.9, 0.9],
                       "D_stsp": [1.0, 2.0], "D_H": [0.1, 0.2],
                       "D_stsp_paper": [3.0, 5.0], "frac_in_box_paper": [0.2, 0.9],
                       "D_H_paper": [0.3, 0.4]})
    held = ex.aggregate(df)
    assert held["D_stsp"].iloc[0] == 1.5 and held["n_scored"].iloc[0] == 2
    paper = ex.aggregate(df, protocol="paper")
    assert paper["D_stsp"].iloc[0] == 5.0 and paper["n_left_box"].iloc[0] == 1
    none = ex.aggregate(df, protocol="paper", scorable=False)
    assert none["n_not_scorable"].iloc[0] == 2 and none["n_scored"].iloc[0] == 0
    assert np.isnan(none["D_stsp"].iloc[0])
    assert ex.failure_note(none.iloc[0]) == f"2 runs {ex.NOT_SCORABLE}"
    with pytest.raises(KeyError, match="protocol"):
        ex.aggregate(df.drop(columns="D_stsp_paper"), protocol="paper")


# ---------------------------------------------------------------------------- committed refs


COMMITTED = sorted(ex.REFERENCE_DIR.glob("*.csv"))


@pytest.mark.parametrize("path", COMMITTED, ids=[p.stem for p in COMMITTED])
def test_committed_references_match_their_inputs(path):
    """Each committed reference table rests on the data and settings of today's code (its
    key), and failure_thresholds reads it (no recomputation)."""
    dataset, protocol = path.stem.rsplit("_", 1)
    if not ex.dataset_available(dataset):
        pytest.skip(f"{dataset} not available here")
    refs = pd.read_csv(path, index_col="reference")
    assert refs["key"].iloc[0] == ex.reference_key(dataset, protocol)
    assert {"data", "sanity proxy", *ex.REFERENCES} <= set(refs.index)
    thr = ex.failure_thresholds(dataset, "quick", protocol=protocol)
    for m in ex.REFERENCE_METRICS:
        want = ex.failure_threshold(refs.drop(columns="key"), m)
        assert thr[m] == want or (np.isnan(thr[m]) and np.isnan(want))


def test_committed_references_cover_every_dataset_and_protocol():
    names = {p.stem for p in COMMITTED}
    want = {f"{d}_{p}" for d in ex.PAPER_TAUS for p in metrics.PROTOCOLS}
    assert names == want


# ---------------------------------------------------------------------------- sweeps


def test_sweep_keeps_parameters_and_scores_both_protocols(tmp_path):
    """evaluate_protocols adds the paper protocol's columns; save_job_models / load_job_models
    give back the same ensemble."""
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.standard_normal((1000, 2)), axis=0) * 0.05
    np.save(tmp_path / "x.npy", x)
    spec = sweeps.SweepSpec(name="t", dataset=str(tmp_path / "x.npy"), n_generate=200,
                            grid={"tau": [5], "seed": [0, 1]},
                            settings={"latent_dim": 4, "seq_len": 20, "epochs": 1},
                            protocols=["heldout", "paper"]).validate()
    assert spec.to_dict()["protocols"] == ["heldout", "paper"]
    assert "protocols" not in sweeps.SweepSpec(name="t", dataset="lorenz").to_dict()
    with pytest.raises(ValueError, match="protocols"):
        sweeps.SweepSpec(name="t", dataset="lorenz", protocols=["paper"]).validate()
    x_train, x_test = sweeps.load_sweep_data(spec)
    model = make_model("plrnn", 4, 2, n_models=2, seeds=[0, 1], init="authors")
    rows = sweeps.evaluate_protocols(spec, model, x_train, x_test)
    plain = metrics.evaluate(model, x_test, n_generate=200)
    paper = metrics.evaluate(model, x, n_generate=200, lyap_steps=0, gmm_layout="authors")
    for r, p, q in zip(rows, plain, paper, strict=True):
        assert r["D_H"] == p["D_H"] and r["D_H_paper"] == q["D_H"]
        assert r["PE1_paper"] == q["PE1"]

    class State:  # what save_job_models reads of a TrainState
        pass

    state = State()
    state.model, state.alive = model, torch.tensor([True, False])
    members = [MemberConfig(tau=5, seed=0), MemberConfig(tau=5, seed=1)]
    path = sweeps.save_job_models(state, members, tmp_path / "parts" / "plrnn.models.pt")
    got_members, got = sweeps.load_job_models(path)
    assert got_members == members and got.init == "authors"
    for name, p in model.state_dict().items():
        torch.testing.assert_close(got.state_dict()[name], p, rtol=0, atol=0)
    assert path.stat().st_size < 20_000
