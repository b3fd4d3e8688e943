import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The offline data folder: BIJEPA_DATA_DIR if set, else ../shared/data beside the repo."""
    d = Path(os.environ.get("BIJEPA_DATA_DIR", REPO.parent / "shared" / "data"))
    if not d.exists():
        pytest.skip(f"offline data folder {d} not found (set BIJEPA_DATA_DIR)")
    return d
