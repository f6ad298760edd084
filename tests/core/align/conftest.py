"""Shared synthetic series (built once per module run: rendering is the slow part)."""

from __future__ import annotations

import pytest
from tests.core.align.synth import make_series


@pytest.fixture(scope="session")
def beads_series():
    """Gold beads on two surfaces over protein-like texture, axis -37 degrees, one dark view (index 3)."""
    return make_series(seed=4, size=224, tilt_axis_deg=-37.0, step=3.0, n_beads=18, dark_views=(3,))


@pytest.fixture(scope="session")
def texture_series():
    """No beads, 4 degrees pretilt, axis 85 degrees, a specimen thinner than the bead one (patch tracking
    on thick specimens is less accurate: see the report)."""
    return make_series(seed=5, size=224, tilt_axis_deg=85.0, step=3.0, n_beads=0, pretilt_deg=4.0,
                       thickness_px=30.0)
