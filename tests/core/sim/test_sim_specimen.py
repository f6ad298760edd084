import numpy as np
import pytest
import torch
from tests.core.sim.simkit import tiny_config

from tomoforge.core.geometry import euler_zyz_to_matrix, rotation_z
from tomoforge.core.sim.build import build_specimen
from tomoforge.core.sim.specimen import Specimen, c6_ring_blobs, random_rotations, sphere_hex_lattice
from tomoforge.core.sim.volume import voxelize


def _corr(a, b):
    a = a - a.mean()
    b = b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


def _ring_volume(xyz, sig, amp, box=40, voxel=3.0):
    spec = Specimen.empty()
    spec.add_blobs(xyz, sig, amp)
    return voxelize(spec, (box, box, box), voxel)


def test_ring_is_c6_and_its_mirror_is_detectably_different():
    xyz, sig, amp = c6_ring_blobs(40.0)
    ref = _ring_volume(xyz, sig, amp)
    turned = _ring_volume(xyz @ rotation_z(60.0).T, sig, amp)
    assert _corr(ref, turned) > 0.999
    mirrored = xyz * torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64)
    # best agreement of the mirror image over in-plane rotations and a flip of the symmetry axis
    best = 0.0
    for flip in (False, True):
        m = mirrored * torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64) if flip else mirrored
        for ang in np.arange(0, 60, 2.0):
            best = max(best, _corr(ref, _ring_volume(m @ rotation_z(float(ang)).T, sig, amp)))
    assert best < 0.8, best


def test_random_rotations_are_proper():
    r = random_rotations(50, np.random.default_rng(1))
    eye = torch.eye(3, dtype=torch.float64)
    assert torch.allclose(r @ r.transpose(1, 2), eye.expand(50, 3, 3), atol=1e-12)
    assert torch.allclose(torch.linalg.det(r), torch.ones(50, dtype=torch.float64))


def test_sphere_lattice_spacing_and_normals():
    pts, mats = sphere_hex_lattice(500.0, 95.0, np.random.default_rng(3))
    assert len(pts) > 100
    assert torch.allclose(pts.norm(dim=1), torch.full((len(pts),), 500.0, dtype=torch.float64), atol=1e-6)
    # +Z of each ring frame is the outward normal
    assert torch.allclose(mats[:, :, 2], pts / 500.0, atol=1e-9)
    d = torch.cdist(pts, pts) + 1e6 * torch.eye(len(pts), dtype=torch.float64)
    nn = d.min(1).values
    assert float(nn.min()) >= 0.8 * 95.0 - 1e-6
    # most rings sit on a near-perfect lattice (chord close to the spacing)
    assert float(torch.median(nn)) == pytest.approx(95.0, rel=0.05)


def test_ring_records_euler_angles_place_the_blobs():
    """The truth's (position, ZYZ Euler) of every ring reproduce its blobs (free rings and rings on VLPs)."""
    cfg = tiny_config(n_rings=5, n_vlps=1, vlp_radius_a=250.0, ice_thickness_a=700.0, beads_per_um2=0,
                      crowding_per_um3=0, image_size_px=96)
    spec = build_specimen(cfg, np.random.default_rng(4), 60.0, (768.0, 768.0, 700.0))
    rings = spec.records["rings"]
    assert sum(r["on_vlp"] is not None for r in rings) > 20 and sum(r["on_vlp"] is None for r in rings) >= 5
    xyz, _, _ = c6_ring_blobs(cfg.ring_radius_a)
    for r in rings[::7]:
        m = euler_zyz_to_matrix(r["rot_deg"], r["tilt_deg"], r["psi_deg"])
        want = xyz @ m.T + torch.tensor(r["xyz_a"], dtype=torch.float64)
        assert float(torch.cdist(want, spec.blob_xyz_a).min(1).values.max()) < 1e-3  # Å
