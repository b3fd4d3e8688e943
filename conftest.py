"""Repository-wide pytest setup for the notebooks that nbval runs."""

import os

# The kernels nbval starts inherit this environment: every chapter shrinks to seconds ...
os.environ.setdefault("BIJEPA_QUICK", "1")
# ... and they run in book/, so a relative data folder (../shared/data in the README's test
# command) is made absolute here, relative to where pytest was started.
if os.environ.get("BIJEPA_DATA_DIR"):
    os.environ["BIJEPA_DATA_DIR"] = os.path.abspath(os.environ["BIJEPA_DATA_DIR"])
