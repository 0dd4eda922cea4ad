"""chaosrnn_utils: the utility package of the chaosrnn companion to Mikhaeil, Monfared &
Durstewitz, *On the difficulty of learning chaotic dynamics with RNNs* (NeurIPS 2022).

Modules: ``systems`` (vector fields, Jacobians, parameter table), ``data`` (trajectories,
the paper's data sets, embedding, cache, the authors' files), ``lyapunov`` (QR spectra,
Rosenstein, τ_pred), ``models`` (ensemble RNNs with analytic Jacobians), ``jacobians``
(Jacobian products, RNN spectra, gradient diagnostics), ``regimes`` (RNNs with known
dynamics), ``forcing`` (sparse teacher forcing), ``metrics`` (D_stsp, D_H, PE),
``training`` (one training loop for every mode, on ensembles), ``fused`` (hand-written
backpropagation through time for the training rollouts), ``sweeps`` (grids, worker processes,
resumable results tables), ``experiments`` (the paper's sweeps per data set and profile, their
committed results, failure scoring and the failed ranges' references), ``paper`` (the
paper's numbers, one table: ``paper.json``), ``plotting`` (one function per panel),
``pipeline`` (profiles, summary table, comparison table, papermill runner).
"""

from .data import (
    EMPIRICAL,
    PAPER_DATASETS,
    check_series,
    delay_embed,
    generate,
    load_empirical,
    paper_dataset,
    standardize,
    train_test_split,
)
from .forcing import MODES, MemberConfig, check_tau, forced_rollout, forcing_mask
from .jacobians import (
    gradient_terms,
    growth_epsilon,
    loss_gradient_norms,
    orbit,
    orbit_jacobians,
    product_log_norms,
    rnn_lyapunov_spectrum,
    theorem3_check,
)
from .lyapunov import (
    RosensteinResult,
    flow_jacobians,
    lyapunov_spectrum,
    map_jacobians,
    mean_period,
    predictability_time,
    qr_spectrum,
    rosenstein,
    rosenstein_dims,
    spectrum_standard_error,
)
from .metrics import (
    evaluate,
    generate_free_run,
    power_spectrum_distance,
    prediction_error,
    score_run,
    state_space_divergence_binned,
    state_space_divergence_gmm,
)
from .models import LSTM, MODELS, PLRNN, DendPLRNN, ShallowPLRNN, TanhRNN, make_model
from .notebook import (
    APPROX,
    PROFILES,
    approx_columns,
    checks_table,
    record_summary,
    select_profile,
    setup,
)
from .regimes import (
    GOLDEN_ANGLE,
    REGIMES,
    Regime,
    TanhRegime,
    chaotic_plrnn,
    curve_profile,
    fixed_point_plrnn,
    nearest_rational,
    quasiperiodic_attracting_rnn,
    quasiperiodic_plrnn,
    rotation_number,
    two_cycle_plrnn,
)
from .sweeps import SweepSpec, run_sweep
from .systems import System, get_system, integrate, system_names
from .training import TrainSettings, member_summary, train

__version__ = "0.1.0"

__all__ = [
    "MODES",
    "MemberConfig",
    "SweepSpec",
    "TrainSettings",
    "member_summary",
    "run_sweep",
    "train",
    "check_tau",
    "evaluate",
    "forced_rollout",
    "forcing_mask",
    "generate_free_run",
    "power_spectrum_distance",
    "score_run",
    "prediction_error",
    "state_space_divergence_binned",
    "state_space_divergence_gmm",
    "LSTM",
    "MODELS",
    "PLRNN",
    "REGIMES",
    "DendPLRNN",
    "ShallowPLRNN",
    "TanhRNN",
    "chaotic_plrnn",
    "fixed_point_plrnn",
    "gradient_terms",
    "growth_epsilon",
    "GOLDEN_ANGLE",
    "Regime",
    "TanhRegime",
    "curve_profile",
    "nearest_rational",
    "quasiperiodic_attracting_rnn",
    "rotation_number",
    "theorem3_check",
    "loss_gradient_norms",
    "make_model",
    "orbit",
    "orbit_jacobians",
    "product_log_norms",
    "quasiperiodic_plrnn",
    "rnn_lyapunov_spectrum",
    "two_cycle_plrnn",
    "EMPIRICAL",
    "APPROX",
    "PAPER_DATASETS",
    "PROFILES",
    "RosensteinResult",
    "System",
    "approx_columns",
    "check_series",
    "delay_embed",
    "flow_jacobians",
    "generate",
    "get_system",
    "integrate",
    "load_empirical",
    "lyapunov_spectrum",
    "map_jacobians",
    "mean_period",
    "paper_dataset",
    "predictability_time",
    "qr_spectrum",
    "checks_table",
    "record_summary",
    "rosenstein",
    "rosenstein_dims",
    "select_profile",
    "setup",
    "spectrum_standard_error",
    "standardize",
    "system_names",
    "train_test_split",
]
