"""Specimen model: Gaussian blobs (protein, crowding) and uniform spherical shells (membranes, gold beads).

Positions are in Å, as ``(X, Y, Z)`` relative to the tomogram volume centre (Z toward the electron source).
Values are the potential above vitreous ice in volts. Both kinds project analytically, so views are exact
line integrals of the same objects that are voxelized into the truth volume.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class Specimen:
    """All scatterers of one tilt series."""

    blob_xyz_a: torch.Tensor  # (n, 3) float64
    blob_sigma_a: torch.Tensor  # (n,)
    blob_peak_v: torch.Tensor  # (n,) peak potential of each 3D Gaussian (V)
    sphere_xyz_a: torch.Tensor  # (m, 3)
    sphere_r_in_a: torch.Tensor  # (m,) 0 for solid spheres
    sphere_r_out_a: torch.Tensor  # (m,)
    sphere_v: torch.Tensor  # (m,) uniform potential inside the shell (V)
    sphere_absorption_per_a: torch.Tensor  # (m,) amplitude contrast per Å of path (gold beads)
    records: dict[str, list[dict]] = field(default_factory=dict)  # truth: beads, rings, vlps, vesicles

    @staticmethod
    def empty() -> Specimen:
        z3, z1 = torch.zeros(0, 3, dtype=torch.float64), torch.zeros(0, dtype=torch.float64)
        return Specimen(z3, z1, z1, z3, z1, z1, z1, z1, {})

    def add_blobs(self, xyz: torch.Tensor, sigma: torch.Tensor, peak_v: torch.Tensor) -> None:
        self.blob_xyz_a = torch.cat([self.blob_xyz_a, xyz.to(torch.float64)])
        self.blob_sigma_a = torch.cat([self.blob_sigma_a, sigma.to(torch.float64).expand(len(xyz))])
        self.blob_peak_v = torch.cat([self.blob_peak_v, peak_v.to(torch.float64).expand(len(xyz))])

    def add_spheres(self, xyz, r_in, r_out, v, absorption=0.0) -> None:
        xyz = torch.as_tensor(xyz, dtype=torch.float64).reshape(-1, 3)
        n = len(xyz)

        def col(x):
            return torch.as_tensor(x, dtype=torch.float64).expand(n).clone()

        self.sphere_xyz_a = torch.cat([self.sphere_xyz_a, xyz])
        self.sphere_r_in_a = torch.cat([self.sphere_r_in_a, col(r_in)])
        self.sphere_r_out_a = torch.cat([self.sphere_r_out_a, col(r_out)])
        self.sphere_v = torch.cat([self.sphere_v, col(v)])
        self.sphere_absorption_per_a = torch.cat([self.sphere_absorption_per_a, col(absorption)])

    def transformed(self, rotation: torch.Tensor) -> Specimen:
        """The specimen rotated by ``rotation`` ``(3, 3)`` about the volume centre (records too)."""
        r = rotation.to(torch.float64)
        out = Specimen(self.blob_xyz_a @ r.T, self.blob_sigma_a, self.blob_peak_v, self.sphere_xyz_a @ r.T,
                       self.sphere_r_in_a, self.sphere_r_out_a, self.sphere_v, self.sphere_absorption_per_a, {})
        for key, recs in self.records.items():
            new = []
            for rec in recs:
                rec = dict(rec)
                rec["xyz_a"] = (r @ torch.tensor(rec["xyz_a"], dtype=torch.float64)).tolist()
                if "matrix" in rec:
                    rec["matrix"] = (r @ torch.tensor(rec["matrix"], dtype=torch.float64)).tolist()
                new.append(rec)
            out.records[key] = new
        return out


# ------------------------------------------------------------------------------------------- the C6 ring

# One chiral subunit as (radius, azimuth deg, height, sigma, peak) in units of the ring radius (40 Å):
# the four blobs climb and twist in one sense, so the ring and its mirror image differ.
_SUBUNIT = torch.tensor([
    [1.00, 0.0, 0.00, 0.18, 1.0],
    [1.30, 11.0, 0.22, 0.15, 0.8],
    [1.15, 25.0, 0.45, 0.13, 0.7],
    [0.75, -15.0, -0.28, 0.15, 0.8],
], dtype=torch.float64)


def c6_ring_blobs(radius_a: float = 40.0, peak_v: float = 2.5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Blobs of one C6 ring in its own frame (symmetry axis +Z): xyz ``(24, 3)`` Å, sigma, peak (V)."""
    xyz, sig, amp = [], [], []
    for k in range(6):
        for r, az, z, s, a in _SUBUNIT.tolist():
            phi = torch.deg2rad(torch.tensor(az + 60.0 * k, dtype=torch.float64))
            xyz.append(torch.stack([r * radius_a * torch.cos(phi), r * radius_a * torch.sin(phi),
                                    torch.tensor(z * radius_a, dtype=torch.float64)]))
            sig.append(s * radius_a)
            amp.append(a * peak_v)
    return torch.stack(xyz), torch.tensor(sig, dtype=torch.float64), torch.tensor(amp, dtype=torch.float64)


def place_rings(spec: Specimen, centres_a: torch.Tensor, matrices: torch.Tensor, radius_a: float,
                peak_v: float = 2.5) -> None:
    """Add rings at ``centres_a`` ``(n, 3)`` with particle-to-tomogram rotations ``(n, 3, 3)``."""
    if len(centres_a) == 0:
        return
    xyz, sig, amp = c6_ring_blobs(radius_a, peak_v)
    world = torch.einsum("nij,kj->nki", matrices.to(torch.float64), xyz) + centres_a[:, None, :]
    n = len(centres_a)
    spec.add_blobs(world.reshape(-1, 3), sig.repeat(n), amp.repeat(n))


# ------------------------------------------------------------------------------------------- helpers

def random_rotations(n: int, rng) -> torch.Tensor:
    """Uniform random rotations ``(n, 3, 3)`` from unit quaternions (numpy Generator ``rng``)."""
    q = torch.as_tensor(rng.normal(size=(n, 4)), dtype=torch.float64)
    q = q / q.norm(dim=1, keepdim=True)
    w, x, y, z = q.unbind(1)
    return torch.stack([
        torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        torch.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        torch.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def frame_from_normal(normal: torch.Tensor, tangent: torch.Tensor) -> torch.Tensor:
    """Rotations ``(n, 3, 3)`` whose +Z column is ``normal`` and +X column the tangent (orthogonalised)."""
    z = normal / normal.norm(dim=-1, keepdim=True)
    x = tangent - (tangent * z).sum(-1, keepdim=True) * z
    x = x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    y = torch.cross(z, x, dim=-1)
    return torch.stack([x, y, z], -1)


def sample_non_overlapping(n: int, radii, lo, hi, rng, existing=None, max_tries: int = 200) -> list[tuple]:
    """Up to ``n`` centres uniformly in the box ``lo``..``hi`` (3-vectors, Å) whose spheres do not overlap.

    ``radii`` is a callable giving one radius per draw; ``existing`` a list of ``(xyz, r)`` to avoid.
    Returns ``[(xyz, r), ...]`` (fewer than ``n`` when the box is full).
    """
    placed = list(existing or [])
    cap = len(placed) + n
    centres = np.zeros((max(cap, 1), 3))
    rads = np.zeros(max(cap, 1))
    for k, (q, rq) in enumerate(placed):
        centres[k], rads[k] = q, rq
    m = len(placed)
    out = []
    for _ in range(n):
        for _ in range(max_tries):
            r = float(radii())
            p = [rng.uniform(lo[i], hi[i]) if hi[i] > lo[i] else 0.5 * (lo[i] + hi[i]) for i in range(3)]
            d2 = ((centres[:m] - p) ** 2).sum(1)
            if not np.any(d2 <= (rads[:m] + r) ** 2):
                centres[m], rads[m] = p, r
                m += 1
                out.append((p, r))
                break
    return out


# ------------------------------------------------------------------------------------------- lattices

def _wrap_to_sphere(qx, qy, pole, e1, e2, radius_a):
    """Exponential map of tangent-plane points ``(qx, qy)`` at ``pole`` onto the sphere."""
    d = torch.sqrt(qx ** 2 + qy ** 2).clamp_min(1e-9)
    a = d / radius_a
    dirn = (qx[:, None] * e1 + qy[:, None] * e2) / d[:, None]
    return radius_a * (torch.cos(a)[:, None] * pole + torch.sin(a)[:, None] * dirn)


def sphere_hex_lattice(radius_a: float, spacing_a: float, rng, n_patches: int = 8,
                       patch_angle_rad: float = 0.75) -> tuple[torch.Tensor, torch.Tensor]:
    """A patchy hexagonal lattice on a sphere (immature-capsid like), about the sphere centre.

    Patches of a planar hexagonal lattice are wrapped onto the sphere around random poles (exponential map)
    and merged, dropping points closer than 0.8 spacing to ones already kept: gaps and defects appear.
    Returns points ``(n, 3)`` Å and rotations ``(n, 3, 3)`` (+Z outward normal, +X along a lattice vector).
    """
    kept_p = torch.zeros(0, 3, dtype=torch.float64)
    kept_t = torch.zeros(0, 3, dtype=torch.float64)
    reach = patch_angle_rad * radius_a
    n_ij = int(reach / spacing_a) + 2
    ij = torch.stack(torch.meshgrid(torch.arange(-n_ij, n_ij + 1), torch.arange(-n_ij, n_ij + 1), indexing="ij"),
                     -1).reshape(-1, 2).to(torch.float64)
    for _ in range(n_patches):
        pole = torch.as_tensor(rng.normal(size=3), dtype=torch.float64)
        pole = pole / pole.norm()
        helper = torch.tensor([1.0, 0, 0], dtype=torch.float64) if abs(pole[0]) < 0.9 else torch.tensor(
            [0, 1.0, 0], dtype=torch.float64)
        e1 = torch.cross(pole, helper, dim=0)
        e1 = e1 / e1.norm()
        e2 = torch.cross(pole, e1, dim=0)
        alpha = float(rng.uniform(0, math.pi / 3))
        off = rng.uniform(0, 1, size=2)
        u = ij[:, 0] + off[0] + 0.5 * ij[:, 1]
        v = (ij[:, 1] + off[1]) * (3 ** 0.5 / 2)
        ca, sa = math.cos(alpha), math.sin(alpha)
        qx, qy = spacing_a * (ca * u - sa * v), spacing_a * (sa * u + ca * v)
        keep = torch.sqrt(qx ** 2 + qy ** 2) < reach
        qx, qy = qx[keep], qy[keep]
        pts = _wrap_to_sphere(qx, qy, pole, e1, e2, radius_a)
        eps = 1e-3 * spacing_a
        tang = _wrap_to_sphere(qx + eps * ca, qy + eps * sa, pole, e1, e2, radius_a) - pts
        if len(kept_p):
            far = torch.cdist(pts, kept_p).min(1).values >= 0.8 * spacing_a
            pts, tang = pts[far], tang[far]
        kept_p = torch.cat([kept_p, pts])
        kept_t = torch.cat([kept_t, tang])
    return kept_p, frame_from_normal(kept_p, kept_t)
