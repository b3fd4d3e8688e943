"""bijepa_nb: the helper package of the BiJEPA book (data, models, training, probes)."""
from .config import LorenzConfig, MnistConfig, ModelConfig, SineConfig, STABILITY_MODES, TrainConfig, paper_config, resolve_device
from .models import JEPA, build_model
from .training import History, TrainingDiverged, train
from . import data, experiments, plotting, probes  # noqa: E402  (submodules used as bj.data, ...)

__all__ = [
    "LorenzConfig", "MnistConfig", "ModelConfig", "SineConfig", "STABILITY_MODES", "TrainConfig",
    "paper_config", "resolve_device", "JEPA", "build_model", "History", "TrainingDiverged", "train",
]
__version__ = "0.1.0"
