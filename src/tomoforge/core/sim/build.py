"""Populate a specimen slab from a :class:`SimConfig`: VLPs, vesicles, free rings, crowding, gold beads.

Objects fill a region wider than the tomogram box, so that tilted and rotated views see specimen everywhere
(as a real ice layer extends beyond the field of view). Counts given per tomogram box are scaled to that area.
Records (truth) keep every bead and particle with its position in Å from the tomogram volume centre.
"""

from __future__ import annotations

import math

import torch

from tomoforge.core.geometry import matrix_to_euler_zyz, rotation_y
from tomoforge.core.sim.config import SimConfig
from tomoforge.core.sim.specimen import (
    Specimen,
    place_rings,
    random_rotations,
    sample_non_overlapping,
    sphere_hex_lattice,
)

PROTEIN_V = 6.0  # peak potential of ring blobs above ice (V): ~ the mass of a 25 kDa subunit per 4 blobs
MEMBRANE_V = 2.0  # lipid headgroup layers (V)
GOLD_V = 10.0  # phase part of a gold bead (V); its absorption gives most of the contrast
GOLD_ABSORPTION_PER_A = 0.004


def specimen_extent_a(cfg: SimConfig, max_tilt_deg: float) -> tuple[float, float]:
    """Half-extents (X, Y) in Å of the populated region, covering every view of the tilt series."""
    w = cfg.effective_image_size_px() * cfg.effective_pixel_size_a()
    theta = math.radians(min(abs(max_tilt_deg), 80.0))
    half_view = 0.75 * w + 3 * cfg.stage_shift_rms_px * cfg.effective_pixel_size_a()
    x = half_view / math.cos(theta) + 0.5 * cfg.ice_thickness_a * math.tan(theta)
    return x, half_view


def _euler_records(kind: str, xyz: torch.Tensor, matrices: torch.Tensor, **extra) -> list[dict]:
    """Truth records with position and ZYZ Euler angles (vectorised: thousands of rings per series)."""
    eul = matrix_to_euler_zyz(matrices.to(torch.float64)).tolist()
    out = []
    for q, m, (rot, tilt, psi) in zip(xyz.tolist(), matrices.tolist(), eul, strict=True):
        rec = {"kind": kind, "xyz_a": q, "rot_deg": rot, "tilt_deg": tilt, "psi_deg": psi, "matrix": m}
        rec.update(extra)
        out.append(rec)
    return out


def build_specimen(cfg: SimConfig, rng, max_tilt_deg: float, box_a: tuple[float, float, float],
                   slab_scale: float = 1.0) -> Specimen:
    """Build the specimen for one tilt series.

    ``box_a``: tomogram box (X, Y, Z) extent in Å; objects inside it are flagged ``in_volume`` in the records.
    ``slab_scale`` multiplies the ice thickness (a wholly bad series gets thick ice).
    """
    spec = Specimen.empty()
    t = cfg.ice_thickness_a * slab_scale
    xe, ye = specimen_extent_a(cfg, max_tilt_deg + abs(cfg.pretilt_deg))
    bx, by = box_a[0], box_a[1]
    area_ratio = (2 * xe * 2 * ye) / (bx * by)
    lo, hi = [-xe, -ye, -t / 2], [xe, ye, t / 2]
    placed: list = []
    recs: dict[str, list[dict]] = {"beads": [], "rings": [], "vlps": [], "vesicles": []}

    # virus-like particles: membrane shell with a hexagonal lattice of C6 rings beneath it
    n_vlp = int(round(cfg.n_vlps * area_ratio))
    for p, r in _draw(n_vlp, lambda: cfg.vlp_radius_a * rng.uniform(0.85, 1.15), lo, hi, t, rng, placed):
        c = torch.tensor(p, dtype=torch.float64)
        spec.add_spheres(c, r - 20, r - 5, MEMBRANE_V)
        spec.add_spheres(c, r + 5, r + 20, MEMBRANE_V)
        pts, mats = sphere_hex_lattice(r - 70, cfg.lattice_spacing_a, rng)
        centres = pts + c
        place_rings(spec, centres, mats, cfg.ring_radius_a, PROTEIN_V)
        recs["vlps"].append({"kind": "vlp", "xyz_a": p, "radius_a": r, "n_rings": len(pts)})
        recs["rings"] += _euler_records("ring", centres, mats, on_vlp=len(recs["vlps"]) - 1)

    # vesicles: lipid bilayer (two leaflets) and a little lumen content
    rmin, rmax = (float(v) for v in cfg.vesicle_radius_range_a.split(","))
    n_ves = int(round(cfg.n_vesicles * area_ratio))
    for p, r in _draw(n_ves, lambda: rng.uniform(rmin, rmax), lo, hi, t, rng, placed):
        c = torch.tensor(p, dtype=torch.float64)
        spec.add_spheres(c, r - 20, r - 5, MEMBRANE_V)
        spec.add_spheres(c, r + 5, r + 20, MEMBRANE_V)
        recs["vesicles"].append({"kind": "vesicle", "xyz_a": p, "radius_a": r})

    # free C6 rings (the particles case) at random orientations
    n_ring = int(round(cfg.n_rings * area_ratio))
    rr = 1.6 * cfg.ring_radius_a
    drawn = _draw(n_ring, lambda: rr, lo, hi, t, rng, placed)
    if drawn:
        centres = torch.tensor([p for p, _ in drawn], dtype=torch.float64)
        mats = random_rotations(len(drawn), rng)
        place_rings(spec, centres, mats, cfg.ring_radius_a, PROTEIN_V)
        recs["rings"] += _euler_records("ring", centres, mats, on_vlp=None)

    # crowding blobs: large soft Gaussians throughout the slab
    n_crowd = int(cfg.crowding_per_um3 * (2 * xe) * (2 * ye) * t * 1e-12)
    if n_crowd:
        xyz = torch.as_tensor(rng.uniform(lo, hi, size=(n_crowd, 3)), dtype=torch.float64)
        sig = torch.as_tensor(rng.uniform(15, 35, size=n_crowd), dtype=torch.float64)
        amp = torch.as_tensor(rng.uniform(0.3, 1.0, size=n_crowd), dtype=torch.float64)
        spec.add_blobs(xyz, sig, amp)

    # gold beads on one or both surfaces, touching the ice surface from inside
    rb = cfg.bead_diameter_a / 2
    n_beads = int(round(cfg.beads_per_um2 * (2 * xe) * (2 * ye) * 1e-8))
    for i in range(n_beads):
        top = cfg.bead_surfaces == 1 or i % 2 == 0
        z = (t / 2 - rb) if top else -(t / 2 - rb)
        got = sample_non_overlapping(1, lambda: 3 * rb, [lo[0], lo[1], z], [hi[0], hi[1], z], rng, placed)
        placed += got
        for p, _ in got:
            spec.add_spheres(torch.tensor(p), 0.0, rb, GOLD_V, GOLD_ABSORPTION_PER_A)
            recs["beads"].append({"kind": "bead", "xyz_a": p, "radius_a": rb,
                                  "surface": "top" if top else "bottom"})

    spec.records = recs
    if cfg.pretilt_deg:
        # the lamella is perpendicular to the beam at the stage tilt pretilt_deg
        spec = spec.transformed(rotation_y(-cfg.pretilt_deg))
    half = [b / 2 for b in box_a]
    for recs_k in spec.records.values():
        for rec in recs_k:
            rec["in_volume"] = all(abs(rec["xyz_a"][i]) <= half[i] for i in range(3))
    return spec


def _draw(n, radius, lo, hi, t, rng, placed):
    """Non-overlapping centres for objects of the given radius that stay inside the slab."""
    out = []
    for _ in range(n):
        r = float(radius())
        zlim = max(t / 2 - r, 0.0)
        got = sample_non_overlapping(1, lambda r=r: r, [lo[0], lo[1], -zlim], [hi[0], hi[1], zlim], rng, placed)
        placed += got
        out += got
    return out
