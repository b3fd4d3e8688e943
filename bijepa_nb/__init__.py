"""bijepa_nb: the helper package of the BiJEPA book.

Four layers, each importing only from the ones above it in this list:

- ``core``: the method the first chapters teach: configurations, sine and Lorenz data,
  models (encoder, predictors, EMA target), the optimiser, training, Protocol A/B probes.
- ``experiments``: the paper's registry of experiments, the batched pipeline, baselines,
  MNIST, the sweeps and reproductions, the future-work models.
- ``analysis``: intervals and verdicts, readers of saved results, tables and figures.
- ``book``: the chapter runner, chapter cells, repository links and widgets.

The modules at the top (``reproduce``, ``sweep``, ``cluster``, ``bench``, ``run``) are
command lines, run as ``python -m bijepa_nb.<name>``; no chapter imports them.
"""

from .core.config import (
    STABILITY_MODES,
    LorenzConfig,
    MnistConfig,
    ModelConfig,
    SineConfig,
    TrainConfig,
    resolve_device,
)
from .core.models import JEPA, build_model
from .core.training import History, TrainingDiverged, train
from .experiments.registry import paper_config

__all__ = [
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
