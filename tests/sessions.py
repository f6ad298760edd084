"""Small synthetic microscope sessions (movies + SerialEM mdoc) shared by tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from tomoforge.io.mdoc import write_mdoc
from tomoforge.io.mrc import write_mrc
from tomoforge.io.tiff import write_tiff_movie

# dose-symmetric order of 7 tilts, 10 degree step: 0, 10, -10, -20, 20, 30, -30
ACQ_ANGLES = [0.0, 10.0, -10.0, -20.0, 20.0, 30.0, -30.0]
T0 = datetime(2024, 5, 17, 10, 0, 0)


def make_session(root: Path, fmt: str = "tif", *, dose: float = 2.5, crlf: bool = True, with_dates: bool = True,
                 rearranged: bool = True, frames_sub: str = "frames", pixel: float = 1.5,
                 shape=(3, 24, 32), ts: str = "TS_07", image_size=None) -> Path:
    """Write small movies and a SerialEM mdoc. Rearranged: ZValue sorted by angle, DateTime keeps true order."""
    rng = np.random.default_rng(0)
    frame_dir = root / frames_sub if frames_sub else root
    frame_dir.mkdir(parents=True, exist_ok=True)
    acq = list(enumerate(ACQ_ANGLES))  # (acquisition rank, angle)
    file_order = sorted(acq, key=lambda t: t[1]) if rearranged else acq
    sections = []
    for rank, angle in file_order:
        name = f"{ts}_{rank:03d}_{angle:.1f}.{fmt}"
        frames = rng.poisson(3.0, size=shape).astype(np.uint8)
        if fmt == "tif":
            write_tiff_movie(frame_dir / name, frames)
        else:
            write_mrc(frame_dir / name, frames, pixel, dtype=np.uint8 if fmt == "mrc" else np.float32)
        sec = {"TiltAngle": angle + 0.001, "ExposureDose": dose, "PixelSpacing": pixel, "Magnification": 81000,
               "TargetDefocus": -3.5, "RotationAngle": 175.3, "SubFramePath": rf"X:\session\{frames_sub}\{name}",
               "NumSubFrames": shape[0]}
        if with_dates:
            sec["DateTime"] = T0 + timedelta(seconds=47 * rank)
        sections.append(sec)
    return write_mdoc(root / f"{ts}.mdoc", {"PixelSpacing": pixel, "Voltage": 300, "ImageFile": f"{ts}.mrc",
                                            "ImageSize": image_size or (shape[2], shape[1]), "DataMode": 1},
                      sections, tilt_axis_deg=-85.0, crlf=crlf)
