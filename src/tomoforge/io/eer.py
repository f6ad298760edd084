"""EER (Electron Event Representation) movies: reading with frame grouping, and a minimal writer.

An EER file is a BigTIFF with one page per raw frame, compressed with Thermo Fisher's schemes
65000 (8-bit skips), 65001 (7-bit skips) or 65002 (variable); tifffile decodes them through
imagecodecs. Raw frames hold single electrons, so they are summed in groups:

- ``frames_per_group`` given directly, or
- from a target dose per group, with seed 003's arithmetic::

      frames_per_group = target_e_per_px / (dose_per_tilt_e_per_a2 * pixel_size_a**2 / n_raw_frames)

  e.g. 0.5 / (3.5 * 1.91**2 / 308) = 12.06 -> 12 frames (25 groups); with 350 frames -> 14.

Raw frames left over after the last full group are dropped (as RELION and MotionCor2 do), unless the
movie has fewer frames than one group, in which case they form one group.

Writing: imagecodecs has no EER encoder, so ``write_eer`` encodes the 65001 bitstream itself (7-bit
skip codes, 4 sub-pixel bits set to 0) and writes the pages with tifffile as uncompressed, then patches
each page's Compression and StripByteCounts tags. Good enough for simulated data; not a camera-faithful
writer (no sub-pixel positions, no Falcon metadata beyond a minimal XML block).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import tifffile

from tomoforge.errors import ParamError, ParseError
from tomoforge.io.atomic import atomic_path

EER_SUFFIXES = (".eer",)
EER_COMPRESSIONS = (65000, 65001, 65002)


def eer_frames_per_group(n_raw_frames: int, dose_per_tilt_e_per_a2: float, pixel_size_a: float,
                         target_e_per_px: float = 0.5) -> int:
    """Raw frames per group for a target dose per group in e/pixel (seed 003), clamped to 1..n."""
    if n_raw_frames < 1:
        raise ParamError(f"{n_raw_frames} raw frames", field="n_raw_frames", expected=">= 1")
    if dose_per_tilt_e_per_a2 <= 0 or pixel_size_a <= 0 or target_e_per_px <= 0:
        raise ParamError(
            f"dose per tilt {dose_per_tilt_e_per_a2} e/Å², pixel size {pixel_size_a} Å, target "
            f"{target_e_per_px} e/px", field="eer_dose_per_group", expected="all three > 0")
    dose_per_frame_e_per_px = dose_per_tilt_e_per_a2 * pixel_size_a**2 / n_raw_frames
    n = int(round(target_e_per_px / dose_per_frame_e_per_px))
    return max(1, min(n_raw_frames, n))


def _open(path: Path) -> tifffile.TiffFile:
    try:
        return tifffile.TiffFile(path)
    except FileNotFoundError:
        raise ParseError("file not found", path=path, expected="an existing EER movie") from None
    except (tifffile.TiffFileError, ValueError, OSError) as err:
        raise ParseError(f"not a readable EER/TIFF file ({err})", path=path, expected="an EER movie") from None


def _pages(path: Path, tif: tifffile.TiffFile) -> list:
    try:
        pages = list(tif.pages)
    except (tifffile.TiffFileError, ValueError, OSError) as err:
        raise ParseError(f"corrupted EER structure ({err})", path=path, expected="a complete EER movie") from None
    if not pages:
        raise ParseError("no frames", path=path, expected="at least one EER frame")
    comp = int(pages[0].compression)
    if comp not in EER_COMPRESSIONS:
        raise ParseError(f"compression {comp}", path=path, field="Compression",
                         expected="EER compression 65000, 65001 or 65002")
    shapes = {tuple(p.shape) for p in pages}
    if len(shapes) > 1:
        raise ParseError(f"frames of different shapes {sorted(shapes)}", path=path,
                         expected="frames of equal shape")
    return pages


def eer_shape(path: str | Path) -> tuple[int, int, int]:
    """(n_raw_frames, h, w) without decoding."""
    path = Path(path)
    with _open(path) as tif:
        pages = _pages(path, tif)
        return (len(pages), *pages[0].shape)


def group_bounds(n_raw_frames: int, frames_per_group: int) -> list[tuple[int, int]]:
    """[start, stop) of each group; the incomplete tail is dropped unless it is the only group."""
    if frames_per_group < 1:
        raise ParamError(f"{frames_per_group}", field="frames_per_group", expected=">= 1")
    n_groups = max(1, n_raw_frames // frames_per_group)
    return [(g * frames_per_group, min(n_raw_frames, (g + 1) * frames_per_group)) for g in range(n_groups)]


def read_eer(path: str | Path, frames_per_group: int | None = None, *,
             dose_per_tilt_e_per_a2: float | None = None, pixel_size_a: float | None = None,
             target_e_per_px: float | None = None) -> np.ndarray:
    """Summed frame groups as float32 (n_groups, h, w).

    Give ``frames_per_group``, or ``target_e_per_px`` with ``dose_per_tilt_e_per_a2`` and
    ``pixel_size_a`` (seed 003). With neither, every raw frame is its own group.
    """
    path = Path(path)
    with _open(path) as tif:
        pages = _pages(path, tif)
        n = len(pages)
        if frames_per_group is None and target_e_per_px is not None:
            if dose_per_tilt_e_per_a2 is None or pixel_size_a is None:
                raise ParamError("a target dose per EER group needs the dose per tilt and the pixel size",
                                 path=path, field="eer_dose_per_group")
            frames_per_group = eer_frames_per_group(n, dose_per_tilt_e_per_a2, pixel_size_a, target_e_per_px)
        bounds = group_bounds(n, frames_per_group or 1)
        out = np.zeros((len(bounds), *pages[0].shape), dtype=np.float32)
        for g, (a, b) in enumerate(bounds):
            for i in range(a, b):
                try:
                    out[g] += pages[i].asarray()
                except Exception as err:  # imagecodecs raises its own error types
                    raise ParseError(f"cannot decode frame {i} ({type(err).__name__}: {err})", path=path,
                                     expected="a complete EER movie") from None
    return out


# ---------------------------------------------------------------------------------------------- writing

def encode_eer_frame(frame: np.ndarray, skip_bits: int = 7) -> bytes:
    """EER bitstream (65001 when skip_bits=7, 65000 when 8) for a binary frame (h, w).

    Each electron is a skip code (pixels since the previous electron) followed by 4 sub-pixel bits; a skip
    of 2**skip_bits - 1 means "skip that many, no electron". A final code lands one past the last pixel.
    Bits are packed LSB first into 64-bit little-endian words.
    """
    flat = np.asarray(frame).ravel()
    if flat.size and flat.max() > 1:
        raise ValueError("EER frames hold at most one electron per pixel")
    hits = np.flatnonzero(flat)
    positions = np.append(hits, flat.size)
    gaps = np.diff(np.concatenate([[-1], positions])) - 1  # pixels skipped before each code
    max_skip = (1 << skip_bits) - 1
    n_max = gaps // max_skip
    rest = gaps % max_skip
    # codes: n_max "skip max" codes (skip_bits wide), then "rest + 4 zero sub-pixel bits"
    counts = n_max + 1
    values = np.full(int(counts.sum()), max_skip, dtype=np.int64)
    widths = np.full(values.size, skip_bits, dtype=np.int64)
    last = np.cumsum(counts) - 1
    values[last] = rest
    widths[last] = skip_bits + 4
    starts = np.concatenate([[0], np.cumsum(widths)[:-1]])
    total = int(widths.sum())
    code_of_bit = np.repeat(np.arange(values.size), widths)
    bit_in_code = np.arange(total) - np.repeat(starts, widths)
    bits = ((values[code_of_bit] >> bit_in_code) & 1).astype(np.uint8)
    bits = np.concatenate([bits, np.zeros((-total) % 64, dtype=np.uint8)])
    return np.packbits(bits, bitorder="little").tobytes()


def write_eer(path: str | Path, frames, *, skip_bits: int = 7) -> Path:
    """Write binary frames (n, h, w) (0/1 per pixel) as an EER BigTIFF, atomically (see module docstring)."""
    path = Path(path)
    if hasattr(frames, "detach"):
        frames = frames.detach().cpu().numpy()
    data = np.asarray(frames)
    if data.ndim != 3:
        raise ValueError(f"write_eer needs (n, h, w) frames, got shape {data.shape}")
    if skip_bits not in (7, 8):
        raise ValueError("skip_bits must be 7 (compression 65001) or 8 (65000)")
    compression = 65001 if skip_bits == 7 else 65000
    n, h, w = data.shape
    encoded = [encode_eer_frame(f, skip_bits) for f in data]
    meta = (f'<metadata><item name="numberOfFrames">{n}</item><item name="sensorImageWidth">{w}</item>'
            f'<item name="sensorImageHeight">{h}</item></metadata>').encode()
    with atomic_path(path) as tmp:
        with tifffile.TiffWriter(tmp, bigtiff=True) as writer:
            for i, enc in enumerate(encoded):
                # tifffile cannot encode EER: write the bitstream as an "uncompressed" strip padded to h*w
                # bytes, then fix the Compression and StripByteCounts tags below.
                padded = enc.ljust(h * w, b"\0") if len(enc) <= h * w else None
                if padded is None:
                    raise ValueError("EER frame too dense to store in this minimal writer")
                writer.write(data=iter([padded]), shape=(h, w), dtype=np.uint8, compression=None,
                             rowsperstrip=h, photometric="minisblack", metadata=None,
                             extratags=[(65001, 7, len(meta), meta, True)] if i == 0 else [])
        with tifffile.TiffFile(tmp) as tif:
            offsets = [(p.tags[259].valueoffset, p.tags[279].valueoffset, int(p.tags[279].dtype))
                       for p in tif.pages]
        with open(tmp, "r+b") as fh:
            for (comp_at, count_at, count_type), enc in zip(offsets, encoded, strict=True):
                fh.seek(comp_at)
                fh.write(struct.pack("<H", compression))
                fh.seek(count_at)
                fh.write(struct.pack("<Q" if count_type == 16 else "<I", len(enc)))
    return path


__all__ = ["EER_SUFFIXES", "eer_frames_per_group", "eer_shape", "encode_eer_frame", "group_bounds", "read_eer",
           "write_eer"]
