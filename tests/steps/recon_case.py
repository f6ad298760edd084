"""The simulator's tiny case (no CTF, no texture) as an aligned TiltSeries record with the true alignment,
for the reconstruction step tests. Images are the noise-free expected images; even/odd halves add
independent noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tomoforge.io.mrc import read_mrc, write_mrc
from tomoforge.io.sim_session import load_truth, session_path, simulate_case
from tomoforge.model import Acquisition, ImageRef, TiltImage, TiltSeries, Transform2D
from tomoforge.steps.base import InputArtifact, Unit


class ReconCase:
    def __init__(self, root: Path, seed: int = 0):
        self.root = root
        self.truth_path = simulate_case("tiny", root / "session", seed=seed,
                                        overrides={"ctf_on": False, "texture_on": False})
        self.truth = load_truth(self.truth_path).tilt_series[0]
        nf, px = read_mrc(session_path(self.truth_path, self.truth.noise_free_stack))
        self.pixel_size_a = float(self.truth.acquisition.pixel_size_a)
        vol, _ = read_mrc(session_path(self.truth_path, self.truth.volume.path))
        self.volume = torch.from_numpy(vol.copy())
        rng = np.random.default_rng(seed)
        sd = 0.3 * float(nf.std())
        self.stack_path = root / "nf.mrcs"
        write_mrc(self.stack_path, nf, self.pixel_size_a, stack=True)
        self.even_path = root / "even.mrcs"
        self.odd_path = root / "odd.mrcs"
        write_mrc(self.even_path, nf + rng.normal(0, sd, nf.shape).astype(np.float32), self.pixel_size_a, stack=True)
        write_mrc(self.odd_path, nf + rng.normal(0, sd, nf.shape).astype(np.float32), self.pixel_size_a, stack=True)
        self.shape_yx = tuple(nf.shape[1:])

    def series(self, *, aligned: bool = True, halves: bool = False, exclude_orders=(),
               noisy: bool = False) -> TiltSeries:
        images = []
        for v in self.truth.views:  # acquisition order = section of the noise-free stack
            k = v.acquisition_order
            images.append(TiltImage(
                tilt_angle_deg=v.tilt_deg, nominal_tilt_angle_deg=v.nominal_tilt_deg, acquisition_order=k,
                image=ImageRef(path=str(self.even_path if noisy else self.stack_path), index=k),
                even=ImageRef(path=str(self.even_path), index=k) if halves else None,
                odd=ImageRef(path=str(self.odd_path), index=k) if halves else None,
                transform=Transform2D.from_rows(v.xf) if aligned else None,
                excluded=k in exclude_orders))
        acq = Acquisition(pixel_size_a=self.pixel_size_a, tilt_axis_deg=self.truth.acquisition.tilt_axis_deg)
        return TiltSeries(ts_id=self.truth.ts_id, acquisition=acq, images=images, image_shape_yx=self.shape_yx)

    def unit(self, ts: TiltSeries, name: str = "ts.json", port: str = "tilt_series") -> Unit:
        path = self.root / name
        path.write_text(ts.model_dump_json())
        art = InputArtifact(artifact_id=1, port=port, key=ts.ts_id, type="TiltSeries", path=str(path))
        return Unit(key=ts.ts_id, inputs={port: [art]})

    def bead_voxels(self, voxel_a: float, shape_zyx) -> list[tuple[float, float, float]]:
        """True bead centres as (x, y, z) voxel indices of a volume of ``shape_zyx`` at ``voxel_a``."""
        d, h, w = shape_zyx
        out = []
        for o in self.truth.beads:
            x, y, z = (c / voxel_a for c in o.xyz_a)
            out.append((x + (w - 1) / 2, y + (h - 1) / 2, z + (d - 1) / 2))
        return out


def sphere_peak(vol: torch.Tensor, radius_vox: float, near_xyz, search: int = 3):
    """Sub-voxel peak (x, y, z) of ``vol`` correlated with a sphere, within ``search`` of ``near_xyz``."""
    zz, yy, xx = torch.meshgrid(*(torch.fft.fftfreq(n, 1 / n) for n in vol.shape), indexing="ij")
    sph = ((zz**2 + yy**2 + xx**2) <= radius_vox**2).float()
    cc = torch.fft.irfftn(torch.fft.rfftn(vol.float()) * torch.fft.rfftn(sph).conj(), s=vol.shape)
    x, y, z = (round(c) for c in near_xyz)
    sub = cc[z - search:z + search + 1, y - search:y + search + 1, x - search:x + search + 1]
    k = int(sub.argmax())
    kz, rem = divmod(k, sub.shape[1] * sub.shape[2])
    ky, kx = divmod(rem, sub.shape[2])
    pz, py, px = z - search + kz, y - search + ky, x - search + kx

    def para(a, b, c):
        den = float(a - 2 * b + c)
        return 0.5 * float(a - c) / den if den < 0 else 0.0

    return (px + para(cc[pz, py, px - 1], cc[pz, py, px], cc[pz, py, px + 1]),
            py + para(cc[pz, py - 1, px], cc[pz, py, px], cc[pz, py + 1, px]),
            pz + para(cc[pz - 1, py, px], cc[pz, py, px], cc[pz + 1, py, px]))
