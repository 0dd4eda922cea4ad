"""chaosrnn_utils: the utility package of the chaosrnn companion to Mikhaeil, Monfared &
Durstewitz, *On the difficulty of learning chaotic dynamics with RNNs* (NeurIPS 2022).

Modules: ``systems`` (vector fields, Jacobians, parameter table), ``data`` (trajectories,
the paper's data sets, embedding, cache, the authors' files), ``lyapunov`` (QR spectra,
Rosenstein, τ_pred), ``plotting`` (one function per panel), ``pipeline`` (profiles,
summary table, papermill runner).
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
)
from .pipeline import PROFILES, record_summary, select_profile
from .systems import System, get_system, integrate, system_names

__version__ = "0.1.0"

__all__ = [
    "EMPIRICAL",
    "PAPER_DATASETS",
    "PROFILES",
    "RosensteinResult",
    "System",
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
    "record_summary",
    "rosenstein",
    "rosenstein_dims",
    "select_profile",
    "standardize",
    "system_names",
    "train_test_split",
]
