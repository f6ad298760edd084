"""Simulated tilt series for the alignment tests, read back with their truth (the true ``xf`` as the stack
shows it: ``tomoforge.io.sim_session.stack_truth_xf``)."""

from __future__ import annotations

import numpy as np
import torch

from tomoforge.io.mrc import read_mrc
from tomoforge.io.sim_session import load_truth, session_path, simulate_case, stack_truth_xf


def load_sim_case(root, seed: int, axis: float, case: str = "tiny", size: int | None = 192) -> dict:
    """One simulated tilt series with its stack and truth: images ``(v, h, w)`` in stack order, pixel size,
    true ``xf`` (corrected to each view's mean frame shift), nominal and true tilts, the excluded mask."""
    overrides = {"write_stack": True, "movie_format": "none", "tilt_axis_nominal_deg": axis}
    if size:
        overrides["image_size_px"] = size
    path = simulate_case(case, root, seed=seed, overrides=overrides)
    ts = load_truth(path).tilt_series[0]
    stack, px = read_mrc(session_path(path, ts.stack))
    views = sorted(ts.views, key=lambda v: v.stack_section)
    xf = stack_truth_xf(views)
    return dict(ts=ts, images=torch.from_numpy(np.array(stack, dtype=np.float32)), px=px, xf=xf,
                nominal=torch.tensor([v.nominal_tilt_deg for v in views], dtype=torch.float64),
                tilt=torch.tensor([v.tilt_deg for v in views], dtype=torch.float64),
                skip=torch.tensor([v.excluded for v in views]))
