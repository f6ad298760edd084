"""IMOD binary models (``.mod``, ``.fid``, ``.seed``, ``.3dmod``): IMODV1.2 big-endian chunks.

Layout: ``IMOD`` ``V1.2``, a 232-byte model header, then chunks until ``IEOF``:
``OBJT`` (176 bytes; one per object), ``CONT`` (16-byte header then ``psize`` x,y,z floats; one per
contour, following its object), ``SIZE`` (per-point sizes of the preceding contour), ``MESH``
(16-byte header, vertices and indices). Every other chunk (IMAT, VIEW, MINX, MEPA, SLAN, OBST, ...) is
``ID, int32 nbytes, data`` and is skipped (and not written back).

For fiducial models (``.fid``) each contour is one bead and its points are ``(x, y, view)`` with the
view 0-based, in pixels of the stack the model was made on.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tomoforge.errors import ParseError
from tomoforge.io.atomic import atomic_path

_HEADER = struct.Struct(">128s3i i I 4i 3f 3f 5i f 2i 3f")   # 232 bytes
_OBJT = struct.Struct(">64s16I i I 2i 3f i 4B 4B 2i")        # 176 bytes
_CONT = struct.Struct(">i I 2i")                            # 16 bytes
_MESH = struct.Struct(">2i I 2h")                           # 16 bytes
MAX_ITEMS = 50_000_000

OBJ_OPEN = 1 << 3
OBJ_SCATTERED = 1 << 9
CONT_WILD = 1 << 4


@dataclass
class ImodContour:
    points: np.ndarray                       # (n, 3) float32 x, y, z (z = section / view index)
    flags: int = 0
    time: int = 0
    surf: int = 0
    sizes: np.ndarray | None = None          # (n,) per-point sizes from a SIZE chunk


@dataclass
class ImodObject:
    name: str = ""
    flags: int = OBJ_OPEN
    color_rgb: tuple[float, float, float] = (0.0, 1.0, 0.0)
    point_size: int = 0                      # pdrawsize (sphere radius for scattered points)
    symbol: int = 1
    symbol_size: int = 3
    line_width: int = 1
    contours: list[ImodContour] = field(default_factory=list)
    n_meshes: int = 0


@dataclass
class ImodModel:
    name: str = "IMOD-NewModel"
    image_size_xyz: tuple[int, int, int] = (0, 0, 0)
    flags: int = 0xF000
    pixel_size: float = 1.0
    units: int = 0
    offset_xyz: tuple[float, float, float] = (0.0, 0.0, 0.0)
    scale_xyz: tuple[float, float, float] = (1.0, 1.0, 1.0)
    objects: list[ImodObject] = field(default_factory=list)
    skipped_chunks: list[str] = field(default_factory=list)


class _Reader:
    def __init__(self, data: bytes, path):
        self.d, self.pos, self.path = data, 0, path

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.d):
            raise ParseError(f"file ends inside {what} at byte {self.pos}", path=self.path,
                             expected=f"{n} more bytes")
        b = self.d[self.pos:self.pos + n]
        self.pos += n
        return b


def read_model(path: str | Path) -> ImodModel:
    """Read an IMOD binary model. Errors (truncation, bad chunk) name the file and byte offset."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ParseError(f"cannot read file: {err.strerror or err}", path=path) from None
    r = _Reader(data, path)
    magic = r.take(8, "the IMOD magic")
    if magic[:4] != b"IMOD":
        raise ParseError("not an IMOD binary model", path=path, expected="'IMOD' magic (IMODV1.2)")
    if magic[4:8] not in (b"V1.2", b"V1.1", b"V1.0"):
        raise ParseError(f"unsupported IMOD model version {magic[4:8]!r}", path=path, expected="V1.2")
    h = _HEADER.unpack(r.take(_HEADER.size, "the model header"))
    name = h[0].split(b"\x00", 1)[0].decode("latin-1")
    model = ImodModel(name=name, image_size_xyz=(h[1], h[2], h[3]), flags=h[5],
                      offset_xyz=tuple(h[10:13]), scale_xyz=tuple(h[13:16]), pixel_size=h[21], units=h[22])
    n_objects = h[4]
    if not 0 <= n_objects <= MAX_ITEMS:
        raise ParseError(f"object count {n_objects}", path=path, expected="a plausible number of objects")
    obj: ImodObject | None = None
    expected_conts = 0
    while True:
        start = r.pos
        cid = r.take(4, "a chunk id")
        if cid == b"IEOF":
            break
        if cid == b"OBJT":
            o = _OBJT.unpack(r.take(_OBJT.size, "an OBJT chunk"))
            if obj is not None and len(obj.contours) != expected_conts:
                raise ParseError(f"object {len(model.objects)} has {len(obj.contours)} contours, header says "
                                 f"{expected_conts}", path=path)
            expected_conts = o[17]
            if not 0 <= expected_conts <= MAX_ITEMS:
                raise ParseError(f"contour count {expected_conts} at byte {start}", path=path)
            obj = ImodObject(name=o[0].split(b"\x00", 1)[0].decode("latin-1"), flags=o[18],
                             color_rgb=(o[21], o[22], o[23]), point_size=o[24], symbol=o[25],
                             symbol_size=o[26], line_width=o[27], n_meshes=o[33])
            model.objects.append(obj)
        elif cid == b"CONT":
            psize, flags, time, surf = _CONT.unpack(r.take(_CONT.size, "a CONT header"))
            if obj is None:
                raise ParseError(f"contour before any object at byte {start}", path=path)
            if not 0 <= psize <= MAX_ITEMS:
                raise ParseError(f"point count {psize} at byte {start}", path=path)
            pts = np.frombuffer(r.take(12 * psize, "contour points"), dtype=">f4").reshape(psize, 3)
            obj.contours.append(ImodContour(points=pts.astype(np.float32), flags=flags, time=time, surf=surf))
        elif cid == b"SIZE":
            nbytes = struct.unpack(">i", r.take(4, "a SIZE length"))[0]
            if obj is None or not obj.contours or nbytes != 4 * len(obj.contours[-1].points):
                raise ParseError(f"SIZE chunk at byte {start} does not match its contour", path=path)
            obj.contours[-1].sizes = np.frombuffer(r.take(nbytes, "point sizes"), dtype=">f4").astype(
                np.float32)
        elif cid == b"MESH":
            vsize, lsize, _flag, _t, _s = _MESH.unpack(r.take(_MESH.size, "a MESH header"))
            if not (0 <= vsize <= MAX_ITEMS and 0 <= lsize <= MAX_ITEMS):
                raise ParseError(f"mesh sizes {vsize}, {lsize} at byte {start}", path=path)
            r.take(12 * vsize + 4 * lsize, "mesh data")
            model.skipped_chunks.append("MESH")
        else:
            if not all(65 <= c <= 90 or 48 <= c <= 57 for c in cid):
                raise ParseError(f"bad chunk id {cid!r} at byte {start}", path=path,
                                 expected="a 4-letter IMOD chunk id")
            nbytes = struct.unpack(">i", r.take(4, f"the length of chunk {cid!r}"))[0]
            r.take(nbytes, f"chunk {cid.decode()}")
            model.skipped_chunks.append(cid.decode())
    if obj is not None and len(obj.contours) != expected_conts:
        raise ParseError(f"last object has {len(obj.contours)} contours, header says {expected_conts}",
                         path=path)
    if len(model.objects) != n_objects:
        raise ParseError(f"{len(model.objects)} objects, header says {n_objects}", path=path)
    return model


def write_model(path: str | Path, model: ImodModel) -> Path:
    """Write IMODV1.2 (IMOD header, OBJT, CONT, SIZE, IEOF) atomically."""
    out = [b"IMODV1.2"]
    nx, ny, nz = (int(v) for v in model.image_size_xyz)
    out.append(_HEADER.pack(model.name.encode("latin-1")[:127], nx, ny, nz, len(model.objects),
                            model.flags, 1, 1, 0, 255, *model.offset_xyz, *model.scale_xyz,
                            0, 0, 0, 3, 128, float(model.pixel_size), int(model.units), 0, 0.0, 0.0, 0.0))
    for o in model.objects:
        out.append(b"OBJT")
        out.append(_OBJT.pack(o.name.encode("latin-1")[:63], *([0] * 16), len(o.contours), o.flags, 0, 1,
                              *(float(c) for c in o.color_rgb), int(o.point_size), o.symbol, o.symbol_size,
                              o.line_width, 0, 0, 0, 0, 0, 0, 0))
        for c in o.contours:
            pts = np.asarray(c.points, dtype=">f4").reshape(-1, 3)
            out.append(b"CONT" + _CONT.pack(len(pts), c.flags, c.time, c.surf) + pts.tobytes())
            if c.sizes is not None:
                s = np.asarray(c.sizes, dtype=">f4").reshape(-1)
                out.append(b"SIZE" + struct.pack(">i", 4 * s.size) + s.tobytes())
    out.append(b"IEOF")
    with atomic_path(path) as tmp:
        tmp.write_bytes(b"".join(out))
    return Path(path)


def fiducial_model(beads: list[np.ndarray], image_size_xyz: tuple[int, int, int], *,
                   pixel_size: float = 1.0, name: str = "IMOD-NewModel",
                   point_size: int = 5) -> ImodModel:
    """A landmark model as beadtrack writes it: one open object, one contour per bead with points
    ``(x, y, view)`` (0-based view)."""
    conts = []
    for b in beads:
        p = np.asarray(b, dtype=np.float32).reshape(-1, 3)
        flags = CONT_WILD if p.size and np.ptp(p[:, 2]) > 0 else 0
        conts.append(ImodContour(points=p, flags=flags))
    obj = ImodObject(name="", flags=OBJ_OPEN, color_rgb=(0.0, 1.0, 0.0), point_size=point_size,
                     contours=conts)
    return ImodModel(name=name, image_size_xyz=image_size_xyz, pixel_size=pixel_size, objects=[obj])


def fiducial_points(model: ImodModel) -> list[np.ndarray]:
    """All contours of all objects as ``(n, 3)`` arrays of ``(x, y, view)``."""
    return [c.points for o in model.objects for c in o.contours]


IMOD_MODEL_HALF_PIXEL = 0.5  # model x, y of a pixel centre = 0-based index + 0.5
IMOD_UNIT_NM = -9


def write_fiducials(path: str | Path, tracks: list, image_size_xyz: tuple[int, int, int], *,
                    pixel_size_a: float | None = None) -> Path:
    """An IMOD landmark model (``.fid``) of ``tracks`` (per bead ``(n, 3)`` raw ``(x, y, view)``, pixel centres
    on integers, views 0-based sections of the exported stack): one contour per bead, as beadtrack writes.

    IMOD model coordinates put a pixel's centre at ``i + 0.5`` (sections stay integers), hence the half-pixel
    shift in x and y. The pixel size goes in the header in nm (IMOD's unit code -9)."""
    beads = []
    for t in tracks:
        p = np.asarray(t, dtype=np.float64).reshape(-1, 3).copy()
        p[:, :2] += IMOD_MODEL_HALF_PIXEL
        beads.append(p)
    model = fiducial_model(beads, image_size_xyz)
    if pixel_size_a is not None:
        model.pixel_size, model.units = pixel_size_a / 10.0, IMOD_UNIT_NM
    return write_model(path, model)
