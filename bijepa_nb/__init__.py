"""bijepa_nb: the helper package of the BiJEPA book (data, models, training, probes)."""

from . import data, experiments, plotting, probes
from .config import (
    STABILITY_MODES,
    LorenzConfig,
    MnistConfig,
    ModelConfig,
    SineConfig,
    TrainConfig,
    paper_config,
    resolve_device,
)
from .models import JEPA, build_model
from .training import History, TrainingDiverged, train

__all__ = [
    "data",
    "experiments",
    "plotting",
    "probes",
    "LorenzConfig",
    "MnistConfig",
    "ModelConfig",
    "SineConfig",
    "STABILITY_MODES",
    "TrainConfig",
    "paper_config",
    "resolve_device",
    "JEPA",
    "build_model",
    "History",
    "TrainingDiverged",
    "train",
]
__version__ = "0.1.0"
