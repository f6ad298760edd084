"""The one place where tomoforge's geometric conventions become matrices.

Conventions (docs/conventions.md is the prose version of this module):

- Images are arrays ``(..., h, w)`` indexed ``(y, x)``; volumes are ``(..., d, h, w)`` indexed ``(z, y, x)``
  with Z the beam (thickness) axis, as IMOD shows a tomogram after ``trimvol -rx``.
- Pixel centres sit on integer coordinates. The centre of an axis of length N is ``(N - 1) / 2``
  (IMOD's centre in 0-based pixels; RELION uses ``N / 2``).
- The tilt axis angle ``psi`` is counter-clockwise from the image +Y axis: its direction is
  ``(x, y) = (-sin psi, cos psi)``.
- An ``.xf`` transform ``[A | d]`` (shape ``(..., 2, 3)``) maps raw to aligned pixel coordinates about the
  image centre ``c``: ``aligned = A @ (raw - c) + d + c``. The aligned image has the tilt axis along +Y.
- A point ``(X, Y, Z)`` of the tomogram, relative to the volume centre, projects into the aligned view of
  tilt angle ``theta`` at ``x = X cos(theta) + Z sin(theta)``, ``y = Y`` (a right-handed rotation of the
  specimen about +Y by ``theta``, then projection along Z).
- Euler angles are ZYZ, active and right-handed: ``R = Rz(rot) @ Ry(tilt) @ Rz(psi)`` turns a particle's
  own coordinates into tomogram coordinates.
"""

from __future__ import annotations

import math

import torch


def image_center(shape: tuple[int, ...]) -> torch.Tensor:
    """Centre ``(x, y[, z])`` of an array of ``shape`` (given in array order) in 0-based pixels."""
    return torch.tensor([(n - 1) / 2 for n in reversed(shape)], dtype=torch.float64)


def rotation_matrix_2d(angle_deg: torch.Tensor | float) -> torch.Tensor:
    """Counter-clockwise rotation ``(..., 2, 2)`` acting on column vectors ``(x, y)``."""
    a = torch.deg2rad(torch.as_tensor(angle_deg, dtype=torch.float64))
    c, s = torch.cos(a), torch.sin(a)
    return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)


def rotation_x(angle_deg: torch.Tensor | float) -> torch.Tensor:
    """Right-handed rotation about +X, ``(..., 3, 3)`` on ``(x, y, z)`` column vectors."""
    a = torch.deg2rad(torch.as_tensor(angle_deg, dtype=torch.float64))
    c, s, o, z = torch.cos(a), torch.sin(a), torch.ones_like(a), torch.zeros_like(a)
    return torch.stack([torch.stack([o, z, z], -1), torch.stack([z, c, -s], -1), torch.stack([z, s, c], -1)], -2)


def rotation_y(angle_deg: torch.Tensor | float) -> torch.Tensor:
    """Right-handed rotation about +Y, ``(..., 3, 3)``: maps +Z towards +X for positive angles."""
    a = torch.deg2rad(torch.as_tensor(angle_deg, dtype=torch.float64))
    c, s, o, z = torch.cos(a), torch.sin(a), torch.ones_like(a), torch.zeros_like(a)
    return torch.stack([torch.stack([c, z, s], -1), torch.stack([z, o, z], -1), torch.stack([-s, z, c], -1)], -2)


def rotation_z(angle_deg: torch.Tensor | float) -> torch.Tensor:
    """Right-handed rotation about +Z, ``(..., 3, 3)``."""
    a = torch.deg2rad(torch.as_tensor(angle_deg, dtype=torch.float64))
    c, s, o, z = torch.cos(a), torch.sin(a), torch.ones_like(a), torch.zeros_like(a)
    return torch.stack([torch.stack([c, -s, z], -1), torch.stack([s, c, z], -1), torch.stack([z, z, o], -1)], -2)


def euler_zyz_to_matrix(rot_deg, tilt_deg, psi_deg) -> torch.Tensor:
    """Active ZYZ rotation ``Rz(rot) Ry(tilt) Rz(psi)``, ``(..., 3, 3)``: particle frame to tomogram frame."""
    return rotation_z(rot_deg) @ rotation_y(tilt_deg) @ rotation_z(psi_deg)


def matrix_to_euler_zyz(matrix: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`euler_zyz_to_matrix`: ``(..., 3, 3)`` to ``(..., 3)`` degrees (rot, tilt, psi)."""
    m = matrix.to(torch.float64)
    tilt = torch.acos(m[..., 2, 2].clamp(-1, 1))
    rot = torch.atan2(m[..., 1, 2], m[..., 0, 2])
    psi = torch.atan2(m[..., 2, 1], -m[..., 2, 0])
    # Gimbal lock (tilt 0 or 180): put the whole in-plane angle into rot.
    lock = torch.sin(tilt).abs() < 1e-9
    rot_lock = torch.atan2(m[..., 1, 0], m[..., 0, 0])
    rot = torch.where(lock, rot_lock, rot)
    psi = torch.where(lock, torch.zeros_like(psi), psi)
    return torch.rad2deg(torch.stack([rot, tilt, psi], -1))


def xf_from_parameters(tilt_axis_deg, shift_xy=None, magnification=1.0) -> torch.Tensor:
    """Build ``.xf`` transforms ``(..., 2, 3)`` that rotate the tilt axis to +Y, scale, then shift.

    ``shift_xy`` ``(..., 2)`` is the ``d`` column (pixels in the aligned frame).
    """
    a = rotation_matrix_2d(-torch.as_tensor(tilt_axis_deg, dtype=torch.float64))
    a = a * torch.as_tensor(magnification, dtype=torch.float64)[..., None, None]
    if shift_xy is None:
        shift_xy = torch.zeros(a.shape[:-2] + (2,), dtype=torch.float64)
    d = torch.as_tensor(shift_xy, dtype=torch.float64).expand(a.shape[:-2] + (2,))
    return torch.cat([a, d[..., None]], -1)


def with_tilt_axis(xf: torch.Tensor, tilt_axis_deg: float | torch.Tensor) -> torch.Tensor:
    """``xf`` ``(..., 2, 3)`` re-made with another axis angle and the same magnification, keeping the raw point
    that lands on the aligned centre (``d' = A' A^-1 d``): the specimen stays where it was."""
    xf = xf.to(torch.float64)
    new = xf_from_parameters(torch.as_tensor(tilt_axis_deg, dtype=torch.float64).expand(xf.shape[:-2]),
                             magnification=xf_magnification(xf))
    d = torch.linalg.solve(xf[..., :2, :2], xf[..., :2, 2:3])
    new[..., :, 2] = (new[..., :2, :2] @ d)[..., 0]
    return new


def xf_rotation_deg(xf: torch.Tensor) -> torch.Tensor:
    """Tilt axis angle (degrees, CCW from +Y) that an ``.xf`` ``(..., 2, 3)`` rotates to vertical."""
    a = xf[..., :2, :2]
    return -torch.rad2deg(torch.atan2(a[..., 1, 0] - a[..., 0, 1], a[..., 0, 0] + a[..., 1, 1]))


def xf_magnification(xf: torch.Tensor) -> torch.Tensor:
    """Isotropic scale of an ``.xf`` ``(..., 2, 3)``: sqrt of the determinant."""
    return torch.linalg.det(xf[..., :2, :2]).abs().sqrt()


def invert_xf(xf: torch.Tensor) -> torch.Tensor:
    """Inverse transforms ``(..., 2, 3)``: aligned to raw."""
    a_inv = torch.linalg.inv(xf[..., :2, :2])
    d_inv = -(a_inv @ xf[..., :2, 2:3])
    return torch.cat([a_inv, d_inv], -1)


def compose_xf(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Transform applying ``first`` then ``second`` (both ``(..., 2, 3)``, same centre)."""
    a = second[..., :2, :2] @ first[..., :2, :2]
    d = second[..., :2, :2] @ first[..., :2, 2:3] + second[..., :2, 2:3]
    return torch.cat([a, d], -1)


def apply_xf(xf: torch.Tensor, points_xy: torch.Tensor, center_xy: torch.Tensor) -> torch.Tensor:
    """Map points ``(..., n, 2)`` with transforms ``(..., 2, 3)`` about ``center_xy`` ``(2,)``."""
    c = torch.as_tensor(center_xy, dtype=points_xy.dtype, device=points_xy.device)
    xf = xf.to(points_xy)
    return (points_xy - c) @ xf[..., :2, :2].transpose(-1, -2) + xf[..., None, :2, 2] + c


def project_points(points_xyz: torch.Tensor, tilt_deg: torch.Tensor, xf: torch.Tensor,
                   image_shape: tuple[int, int], x_tilt_deg: float = 0.0) -> torch.Tensor:
    """Project 3D points into raw (unaligned) view coordinates.

    points_xyz: ``(n, 3)`` in pixels relative to the tomogram centre.
    tilt_deg: ``(v,)`` tilt angles; xf: ``(v, 2, 3)`` raw-to-aligned transforms.
    Returns ``(v, n, 2)`` raw pixel coordinates ``(x, y)`` (0-based, integer = pixel centre).
    """
    p = points_xyz.to(torch.float64)
    if x_tilt_deg:
        p = p @ rotation_x(x_tilt_deg).T
    rot = rotation_y(torch.as_tensor(tilt_deg, dtype=torch.float64))  # (v, 3, 3)
    aligned = torch.einsum("vij,nj->vni", rot, p)[..., :2]
    center = image_center(image_shape)
    aligned = aligned + center
    return apply_xf(invert_xf(xf.to(torch.float64)), aligned, center)


def projection_matrices(tilt_deg: torch.Tensor, xf: torch.Tensor, image_shape: tuple[int, int],
                        volume_shape: tuple[int, int, int]) -> torch.Tensor:
    """Affine maps ``(v, 2, 4)`` from volume voxel ``(x, y, z, 1)`` (0-based) to aligned pixel ``(x, y)``."""
    rot = rotation_y(torch.as_tensor(tilt_deg, dtype=torch.float64))[..., :2, :]
    vc = image_center(volume_shape)
    ic = image_center(image_shape)
    t = ic - (rot @ vc)
    return torch.cat([rot, t[..., None]], -1)


def tilt_axis_direction(tilt_axis_deg: float) -> tuple[float, float]:
    """Unit vector ``(x, y)`` of the tilt axis in the raw image."""
    a = math.radians(tilt_axis_deg)
    return (-math.sin(a), math.cos(a))
