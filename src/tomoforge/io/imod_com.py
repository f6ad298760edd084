"""IMOD command files (``tilt.com``, ``newst.com``, ``xcorr.com``, ``track.com``, ``align.com``...).

A command file is a list of ``$program args`` commands. With ``-StandardInput`` the following lines are
PIP ``Key value...`` entries (tab or space separated; a key may repeat); otherwise the arguments are an
old-style command line (``-input A -output B ...``) and the following lines are that program's standard
input (as for ``xftoxg``). ``#`` lines are comments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from tomoforge.errors import ParseError
from tomoforge.io._text import read_lines, to_float, to_int
from tomoforge.io.atomic import write_text_atomic


@dataclass
class ComCommand:
    program: str
    line: int
    pip: bool
    params: dict[str, list[list[str]]] = field(default_factory=dict)   # key -> list of value lists
    args: list[str] = field(default_factory=list)                     # old-style command line
    stdin: list[str] = field(default_factory=list)
    key_lines: dict[str, int] = field(default_factory=dict)             # key -> line of its last entry

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key.lower(), self.line)

    def has(self, key: str) -> bool:
        return key.lower() in self.params

    def values(self, key: str) -> list[str] | None:
        """The values of the last occurrence of ``key`` (case-insensitive), or None."""
        v = self.params.get(key.lower())
        return v[-1] if v else None

    def option(self, *names: str) -> str | None:
        """Value after an old-style ``-name`` option (first of ``names`` present)."""
        for name in names:
            for k, a in enumerate(self.args):
                if a.lstrip("-").lower() == name.lower() and a.startswith("-") and k + 1 < len(self.args):
                    return self.args[k + 1]
        return None


def read_com(path: str | Path) -> list[ComCommand]:
    """Parse a command file into commands; lines before any ``$program`` are a ParseError."""
    out: list[ComCommand] = []
    cur: ComCommand | None = None
    for i, raw in enumerate(read_lines(path), start=1):
        s = raw.strip()
        if not s or s.startswith("#"):
            continue
        if s.startswith("$"):
            toks = s[1:].split()
            if not toks:
                raise ParseError("'$' without a program name", path=path, line=i)
            pip = any(t.lower() in ("-standardinput", "-stdin", "-si") for t in toks[1:])
            cur = ComCommand(program=toks[0], line=i, pip=pip,
                             args=[] if pip else toks[1:])
            out.append(cur)
            continue
        if cur is None:
            raise ParseError(f"'{s[:40]}' before any $program line", path=path, line=i,
                             expected="'$program -StandardInput'")
        if cur.pip:
            toks = s.split()
            cur.params.setdefault(toks[0].lower(), []).append(toks[1:])
            cur.key_lines[toks[0].lower()] = i
        else:
            cur.stdin.append(s)
    if not out:
        raise ParseError("no $program lines", path=path, expected="an IMOD command file")
    return out


def find_command(cmds: list[ComCommand], program: str, path="") -> ComCommand:
    for c in cmds:
        if c.program.lower() == program.lower():
            return c
    raise ParseError(f"no ${program} command", path=path, expected=f"a ${program} line")


def parse_view_list(text: str, path="", line: int | None = None) -> list[int]:
    """IMOD view list ``1-3,7,9-10`` -> [1, 2, 3, 7, 9, 10] (1-based)."""
    out: list[int] = []
    for part in text.replace(" ", ",").split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part[1:]:
            a, b = part.split("-", 1) if not part.startswith("-") else ("-" + part[1:].split("-", 1)[0],
                                                                          part[1:].split("-", 1)[1])
            lo, hi = to_int(a, path, line, "view list"), to_int(b, path, line, "view list")
            if hi < lo or hi - lo > 100000:
                raise ParseError(f"bad view range '{part}'", path=path, line=line)
            out.extend(range(lo, hi + 1))
        else:
            out.append(to_int(part, path, line, "view list"))
    return out


def format_view_list(views: list[int]) -> str:
    """[1, 2, 3, 7] -> '1-3,7'."""
    v = sorted(set(int(x) for x in views))
    parts, k = [], 0
    while k < len(v):
        j = k
        while j + 1 < len(v) and v[j + 1] == v[j] + 1:
            j += 1
        parts.append(str(v[k]) if j == k else f"{v[k]}-{v[j]}")
        k = j + 1
    return ",".join(parts)


# ----------------------------------------------------------------------------------------- tilt.com


class TiltParams(BaseModel):
    """The ``tilt`` parameters users care about (IMOD names in comments)."""

    model_config = ConfigDict(extra="forbid")
    input_projections: str                      # InputProjections
    output_file: str                            # OutputFile
    thickness_px: int                           # THICKNESS (in unbinned pixels / IMAGEBINNED)
    tilt_file: str                              # TILTFILE
    image_binned: int = 1                       # IMAGEBINNED
    full_image_xy: tuple[int, int] | None = None  # FULLIMAGE
    x_axis_tilt_deg: float = 0.0                # XAXISTILT
    shift_xz: tuple[float, float] = (0.0, 0.0)  # SHIFT
    offset_deg: float = 0.0                     # OFFSET
    exclude_views: list[int] = []               # EXCLUDELIST (1-based)
    radial: tuple[float, float] = (0.35, 0.035)  # RADIAL cutoff, falloff
    falloff_is_true_sigma: bool = True          # FalloffIsTrueSigma
    log: float | None = None                    # LOG (None = no log)
    mode: int = 2                               # MODE
    perpendicular: bool = True                  # PERPENDICULAR
    scale: tuple[float, float] = (0.0, 1.0)     # SCALE add, multiply
    subset_start: tuple[int, int] | None = None  # SUBSETSTART
    local_file: str | None = None               # LOCALFILE
    xtilt_file: str | None = None               # XTILTFILE
    zfactor_file: str | None = None             # ZFACTORFILE
    use_gpu: int | None = None                  # UseGPU
    adjust_origin: bool = True                  # AdjustOrigin


def read_tilt_com(path: str | Path) -> TiltParams:
    cmds = read_com(path)
    c = find_command(cmds, "tilt", path)
    if not c.pip:
        raise ParseError("old-style tilt command lines are not supported", path=path, line=c.line)

    def one(key, conv, default=None, n=1):
        v = c.values(key)
        if v is None:
            return default
        toks = _split_commas(v)
        if len(toks) < n:
            raise ParseError(f"{key} needs {n} value(s)", path=path, line=c.line_of(key), field=key)
        vals = [conv(t, path, c.line_of(key), key) for t in toks[:n]]
        return vals[0] if n == 1 else tuple(vals)

    for key in ("InputProjections", "OutputFile", "THICKNESS", "TILTFILE"):
        if not c.has(key):
            raise ParseError(f"tilt.com has no {key}", path=path, line=c.line, field=key)
    excl: list[int] = []
    for vals in c.params.get("excludelist", []) + c.params.get("exclude", []):
        excl += parse_view_list(",".join(vals), path, c.line_of("EXCLUDELIST"))
    log = one("LOG", to_float)
    return TiltParams(
        input_projections=c.values("InputProjections")[0] if c.values("InputProjections") else "",
        output_file=c.values("OutputFile")[0] if c.values("OutputFile") else "",
        thickness_px=one("THICKNESS", to_int), tilt_file=c.values("TILTFILE")[0] if c.values("TILTFILE") else "",
        image_binned=one("IMAGEBINNED", to_int, 1), full_image_xy=one("FULLIMAGE", to_int, None, 2),
        x_axis_tilt_deg=one("XAXISTILT", to_float, 0.0), shift_xz=one("SHIFT", to_float, (0.0, 0.0), 2),
        offset_deg=one("OFFSET", to_float, 0.0), exclude_views=sorted(set(excl)),
        radial=one("RADIAL", to_float, (0.35, 0.035), 2), falloff_is_true_sigma=c.has("FalloffIsTrueSigma"),
        log=log, mode=one("MODE", to_int, 2), perpendicular=not c.has("PARALLEL"),
        scale=one("SCALE", to_float, (0.0, 1.0), 2), subset_start=one("SUBSETSTART", to_int, None, 2),
        local_file=_first(c, "LOCALFILE"), xtilt_file=_first(c, "XTILTFILE"),
        zfactor_file=_first(c, "ZFACTORFILE"), use_gpu=one("UseGPU", to_int),
        adjust_origin=c.has("AdjustOrigin"))


def _split_commas(vals: list[str]) -> list[str]:
    out = []
    for v in vals:
        out += [t for t in v.split(",") if t != ""]
    return out


def _first(c: ComCommand, key: str) -> str | None:
    v = c.values(key)
    return v[0] if v else None


def format_tilt_com(p: TiltParams) -> str:
    """A tilt.com that IMOD's ``submfg``/``tilt -StandardInput`` accepts."""
    out = ["# Command file to run Tilt (written by tomoforge)", "####CreatedVersion#### 4.11.0", "#",
           "$tilt -StandardInput", f"InputProjections {p.input_projections}", f"OutputFile {p.output_file}",
           f"IMAGEBINNED {p.image_binned}", f"TILTFILE {p.tilt_file}", f"THICKNESS {p.thickness_px}",
           f"RADIAL {p.radial[0]:g} {p.radial[1]:g}"]
    if p.falloff_is_true_sigma:
        out.append("FalloffIsTrueSigma 1")
    out.append(f"XAXISTILT {p.x_axis_tilt_deg:g}")
    if p.log is not None:
        out.append(f"LOG {p.log:g}")
    out += [f"SCALE {p.scale[0]:g} {p.scale[1]:g}", "PERPENDICULAR" if p.perpendicular else "PARALLEL",
            f"MODE {p.mode}"]
    if p.full_image_xy is not None:
        out.append(f"FULLIMAGE {p.full_image_xy[0]} {p.full_image_xy[1]}")
    if p.subset_start is not None:
        out.append(f"SUBSETSTART {p.subset_start[0]} {p.subset_start[1]}")
    if p.adjust_origin:
        out.append("AdjustOrigin")
    out.append(f"OFFSET {p.offset_deg:g}")
    out.append(f"SHIFT {p.shift_xz[0]:g} {p.shift_xz[1]:g}")
    for key, val in (("LOCALFILE", p.local_file), ("XTILTFILE", p.xtilt_file), ("ZFACTORFILE", p.zfactor_file)):
        if val:
            out.append(f"{key} {val}")
    if p.exclude_views:
        out.append(f"EXCLUDELIST {format_view_list(p.exclude_views)}")
    if p.use_gpu is not None:
        out.append(f"UseGPU {p.use_gpu}")
    out.append("$if (-e ./savework) ./savework")
    return "\n".join(out) + "\n"


def write_tilt_com(path: str | Path, p: TiltParams) -> Path:
    return write_text_atomic(path, format_tilt_com(p))


# ---------------------------------------------------------------------------------------- newst.com


class NewstackParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input_file: str
    output_file: str
    transform_file: str | None = None
    offset_xy: tuple[float, float] = (0.0, 0.0)
    size_xy: tuple[int, int] | None = None
    bin_by: int = 1
    mode: int | None = None
    float_densities: int | None = None
    taper: bool = False


def read_newst_com(path: str | Path) -> NewstackParams:
    """Read newstack parameters from PIP (``InputFile``...) or old-style (``-input``...) command files."""
    cmds = read_com(path)
    c = find_command(cmds, "newstack", path)
    taper = any(x.program.lower() == "mrctaper" for x in cmds) or (c.pip and c.has("TaperAtFill"))
    ln = c.line

    def get(pip_key, opt_names):
        if c.pip:
            v = c.values(pip_key)
            return ",".join(v) if v else None
        return c.option(*opt_names)

    inp, outp = get("InputFile", ("input", "in")), get("OutputFile", ("output", "ou"))
    if not inp or not outp:
        raise ParseError("newstack needs an input and an output file", path=path, line=ln)
    off = get("OffsetsInXandY", ("offset", "of"))
    size = get("SizeToOutputInXandY", ("size", "si"))
    size_xy = None
    if size and size.strip(","):
        t = [x for x in size.split(",")]
        if len(t) != 2 or not t[0] or not t[1]:
            raise ParseError(f"size '{size}'", path=path, line=ln, expected="NX,NY")
        size_xy = (to_int(t[0], path, ln, "size"), to_int(t[1], path, ln, "size"))
    offs = (0.0, 0.0)
    if off:
        t = off.split(",")
        if len(t) != 2:
            raise ParseError(f"offset '{off}'", path=path, line=ln, expected="DX,DY")
        offs = (to_float(t[0], path, ln, "offset"), to_float(t[1], path, ln, "offset"))
    bin_by = get("BinByFactor", ("bin", "bi"))
    mode = get("ModeToOutput", ("mode", "mo"))
    flt = get("FloatDensities", ("float", "fl"))
    return NewstackParams(input_file=inp, output_file=outp,
                          transform_file=get("TransformFile", ("xform", "xf")), offset_xy=offs,
                          size_xy=size_xy, bin_by=to_int(bin_by, path, ln, "bin") if bin_by else 1,
                          mode=to_int(mode, path, ln, "mode") if mode else None,
                          float_densities=to_int(flt, path, ln, "float") if flt else None, taper=taper)


def format_newst_com(p: NewstackParams) -> str:
    out = ["# Command file to run newstack (written by tomoforge)", "$newstack -StandardInput",
           f"InputFile {p.input_file}", f"OutputFile {p.output_file}"]
    if p.transform_file:
        out.append(f"TransformFile {p.transform_file}")
    out.append(f"OffsetsInXandY {p.offset_xy[0]:g},{p.offset_xy[1]:g}")
    if p.size_xy:
        out.append(f"SizeToOutputInXandY {p.size_xy[0]},{p.size_xy[1]}")
    if p.bin_by != 1:
        out.append(f"BinByFactor {p.bin_by}")
    if p.mode is not None:
        out.append(f"ModeToOutput {p.mode}")
    if p.float_densities is not None:
        out.append(f"FloatDensities {p.float_densities}")
    if p.taper:
        out.append("TaperAtFill 1,0")
    return "\n".join(out) + "\n"


def write_newst_com(path: str | Path, p: NewstackParams) -> Path:
    return write_text_atomic(path, format_newst_com(p))


# ------------------------------------------------------------------------- xcorr / track / align


def read_program_params(path: str | Path, program: str) -> dict[str, str]:
    """PIP parameters of one program in a command file as {Key: 'value text'} (last occurrence wins),
    e.g. ``read_program_params('xcorr.com', 'tiltxcorr')['RotationAngle']``."""
    cmds = read_com(path)
    c = find_command(cmds, program, path)
    if not c.pip:
        raise ParseError(f"${program} is not a -StandardInput command", path=path, line=c.line)
    out: dict[str, str] = {}
    raw_keys: dict[str, str] = {}
    for raw in read_lines(path)[c.line:]:
        s = raw.strip()
        if s.startswith("$"):
            break
        if s and not s.startswith("#"):
            raw_keys[s.split()[0].lower()] = s.split()[0]
    for key, vals in c.params.items():
        out[raw_keys.get(key, key)] = " ".join(vals[-1])
    return out
