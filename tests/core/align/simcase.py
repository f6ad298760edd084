"""Simulated tilt series for the alignment tests, read back with their truth (the true ``xf`` as the stack
shows it: ``tomoforge.io.sim_session.stack_truth_xf``)."""

from __future__ import annotations

from tomoforge.io.sim_session import SimStack, read_sim_stack, simulate_case


def load_sim_case(root, seed: int, axis: float, case: str = "tiny", size: int | None = 192) -> SimStack:
    """One simulated tilt series (``case`` at ``size`` px, nominal axis ``axis``) with its stack and truth."""
    overrides = {"write_stack": True, "movie_format": "none", "tilt_axis_nominal_deg": axis}
    if size:
        overrides["image_size_px"] = size
    return read_sim_stack(simulate_case(case, root, seed=seed, overrides=overrides))
