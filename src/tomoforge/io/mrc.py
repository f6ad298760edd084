"""MRC / MRCS / ST / MAP files: validated header, memory-mapped sections, atomic writes.

Arrays are (z, y, x) exactly as stored: row 0 is the first row in the file (MRC images are bottom-up
on screen in IMOD; no flip is applied here). Every mode reads as float32 (int8, int16, uint16, float16,
float32). The header is checked against the file size before anything is mapped, so a truncated or
non-MRC file raises ParseError naming the file and what was expected.
"""

from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np
from pydantic import BaseModel, ConfigDict

from tomoforge.errors import ParseError
from tomoforge.io.atomic import atomic_path

MRC_SUFFIXES = (".mrc", ".mrcs", ".st", ".map", ".ali", ".rec", ".preali")
HEADER_BYTES = 1024
# mode -> numpy dtype (little-endian; byte order is fixed up from the machine stamp)
MODE_DTYPES = {0: np.int8, 1: np.int16, 2: np.float32, 6: np.uint16, 12: np.float16}
_STACK_SUFFIXES = (".mrcs", ".st", ".ali", ".preali")
IMOD_STAMP = 1146047817


class MrcHeaderInfo(BaseModel):
    """What the header says, after validation against the file size."""

    model_config = ConfigDict(extra="forbid")
    path: str
    shape_zyx: tuple[int, int, int]
    pixel_size_a: float
    mode: int
    dtype: str
    data_offset: int
    byte_order: str

    @property
    def n_sections(self) -> int:
        return self.shape_zyx[0]


def _mode_dtype(raw: bytes, mode: int, order: str) -> type:
    """Mode 0 is signed in MRC2014 but unsigned in files IMOD wrote without its 'signed bytes' flag."""
    if mode == 0:
        imod_stamp = int(np.frombuffer(raw[152:156], dtype=f"{order}i4")[0])
        if imod_stamp == IMOD_STAMP and not raw[156] & 1:
            return np.uint8
    return MODE_DTYPES[mode]


def _parse_header(path: Path, raw: bytes, file_size: int) -> MrcHeaderInfo:
    if len(raw) < HEADER_BYTES:
        raise ParseError(f"truncated: {file_size} bytes is shorter than the 1024-byte MRC header", path=path,
                         expected="an MRC file")
    stamp = raw[212]
    order = ">" if stamp == 0x11 else "<"
    words = np.frombuffer(raw[:HEADER_BYTES], dtype=f"{order}i4")
    if stamp not in (0x44, 0x11, 0x4C):  # unknown stamp: guess from the plausibility of the mode
        le = np.frombuffer(raw[:16], dtype="<i4")
        order = "<" if 0 <= le[3] <= 12 and 0 < le[0] < 1 << 20 else ">"
        words = np.frombuffer(raw[:HEADER_BYTES], dtype=f"{order}i4")
    nx, ny, nz, mode = (int(v) for v in words[:4])
    mx = int(words[7])
    cella_x = float(np.frombuffer(raw[40:44], dtype=f"{order}f4")[0])
    nsymbt = int(words[23])
    if min(nx, ny, nz) <= 0 or max(nx, ny, nz) > 1 << 24 or nsymbt < 0:
        raise ParseError(f"not an MRC header (dimensions {nx}x{ny}x{nz}, extended header {nsymbt})",
                         path=path, expected="an MRC file with positive dimensions")
    if mode not in MODE_DTYPES:
        raise ParseError(f"unsupported MRC mode {mode}", path=path, field="mode",
                         expected="0 (int8), 1 (int16), 2 (float32), 6 (uint16) or 12 (float16)")
    dtype = np.dtype(_mode_dtype(raw, mode, order)).newbyteorder(order)
    offset = HEADER_BYTES + nsymbt
    need = offset + nx * ny * nz * dtype.itemsize
    if file_size < need:
        raise ParseError(f"truncated: header says {nz}x{ny}x{nx} {dtype.name} = {need} bytes, "
                         f"file has {file_size}", path=path, expected="a complete MRC file")
    pixel = cella_x / mx if mx > 0 and np.isfinite(cella_x) else 0.0
    return MrcHeaderInfo(path=str(path), shape_zyx=(nz, ny, nx), pixel_size_a=round(float(pixel), 6),
                         mode=mode, dtype=dtype.name, data_offset=offset, byte_order=order)


def mrc_header_info(path: str | Path) -> MrcHeaderInfo:
    """Shape (z, y, x), pixel size (Å, 0 when the header has none), mode; validated against the file size."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(HEADER_BYTES)
            size = fh.seek(0, 2)
    except FileNotFoundError:
        raise ParseError("file not found", path=path, expected="an existing MRC file") from None
    except OSError as err:
        raise ParseError(f"cannot read: {err.strerror}", path=path) from None
    return _parse_header(path, raw, size)


def open_stack(path: str | Path) -> np.memmap:
    """Read-only memory map of the data, shape (z, y, x), in the file's own dtype."""
    info = mrc_header_info(path)
    return np.memmap(path, dtype=np.dtype(info.dtype).newbyteorder(info.byte_order), mode="r",
                     offset=info.data_offset, shape=info.shape_zyx)


def read_section(path: str | Path, index: int) -> np.ndarray:
    """One section ``(h, w)`` as float32; ParseError when ``index`` is outside the stack."""
    stack = open_stack(path)
    if not 0 <= index < stack.shape[0]:
        raise ParseError(f"section {index} does not exist", path=path, field="index",
                         expected=f"0..{stack.shape[0] - 1}")
    return np.asarray(stack[index], dtype=np.float32)


def read_mrc(path: str | Path) -> tuple[np.ndarray, float]:
    """Whole file as a float32 array (z, y, x) and its pixel size in Å (0.0 when unset)."""
    info = mrc_header_info(path)
    return np.asarray(open_stack(path), dtype=np.float32), info.pixel_size_a


def write_mrc(path: str | Path, array, pixel_size_a: float, *, stack: bool | None = None,
              dtype=np.float32, label: str = "tomoforge") -> Path:
    """Write ``array`` ((h, w) or (z, y, x), numpy or torch) atomically with the given pixel size.

    ``stack`` marks an image stack (ISPG 0); default: True for .mrcs/.st/.ali suffixes. The header label is
    fixed (mrcfile would stamp the time), so the same data give the same bytes.
    """
    path = Path(path)
    if hasattr(array, "detach"):
        array = array.detach().cpu().numpy()
    data = np.ascontiguousarray(np.asarray(array), dtype=dtype)
    if data.ndim not in (2, 3):
        raise ValueError(f"write_mrc needs a 2D or 3D array, got shape {data.shape}")
    if stack is None:
        stack = path.suffix.lower() in _STACK_SUFFIXES
    with atomic_path(path) as tmp, mrcfile.new(tmp, overwrite=True) as mrc:
        mrc.set_data(data)
        if stack and data.ndim == 3:
            mrc.set_image_stack()
        mrc.voxel_size = float(pixel_size_a)
        mrc.header.label[0] = label.encode()[:80]
        mrc.header.nlabl = 1
    return path


__all__ = ["MRC_SUFFIXES", "MrcHeaderInfo", "mrc_header_info", "open_stack", "read_mrc", "read_section",
           "write_mrc"]
