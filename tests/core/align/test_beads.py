import torch
from tests.core.align.synth import make_series

from tomoforge.core.align.beads import detect_beads, estimate_bead_diameter


def test_detects_beads_at_their_positions(beads_series):
    s = beads_series
    z = int(torch.argmin(s.tilt_deg.abs()))
    pos, snr = detect_beads(s.images[z], s.bead_diameter_px)
    true = s.beads_raw[z]
    inside = ((true > 6) & (true < s.images.shape[-1] - 6)).all(1)
    d = torch.cdist(pos, true[inside])
    assert (d.min(1).values < 1.0).all()  # every detection is a bead, within a pixel
    assert len(pos) >= 0.85 * int(inside.sum())
    assert torch.median(d.min(1).values) < 0.4


def test_no_beads_on_protein_alone():
    s = make_series(seed=9, size=192, n_beads=0, step=30.0)
    z = int(torch.argmin(s.tilt_deg.abs()))
    pos, _ = detect_beads(s.images[z], 8.0)
    assert len(pos) <= 1  # protein blobs are smaller and fainter than gold


def test_estimate_bead_diameter(beads_series):
    s = beads_series
    z = int(torch.argmin(s.tilt_deg.abs()))
    d = estimate_bead_diameter(s.images[z])
    assert d is not None and abs(d - s.bead_diameter_px) <= 2
