"""tomoforge: cryo-electron tomography from movies to tomograms and subtomogram averages."""

import os

# OpenMP threads that spin while waiting make small torch ops 10-50x slower whenever another process wants
# the same cores (a shared workstation, two workers on two cores). Must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
