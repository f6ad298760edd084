"""Shared by the preprocessing steps: read a tilt series' images, write a new stack and its record.

A new stack holds the views in the record's order (tilt-angle order); each TiltImage keeps its acquisition
order, dose and exclusion flag and points at its own section, so no index is ever re-derived.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tomoforge.errors import InputError
from tomoforge.io.mrc import read_section, write_mrc
from tomoforge.model import ImageRef, TiltImage, TiltSeries
from tomoforge.steps.base import Unit


def load_series(unit: Unit, port: str = "tilt_series") -> tuple[TiltSeries, str]:
    art = unit.one(port)
    return art.load(TiltSeries), art.path  # type: ignore[return-value]


def image_ref(im: TiltImage, which: str = "image") -> ImageRef | None:
    """The ``image``, ``even`` or ``odd`` reference of a view (explicit table, no attribute lookup by name)."""
    return {"image": im.image, "even": im.even, "odd": im.odd}[which]


def has_all(images: list[TiltImage], which: str) -> bool:
    return bool(images) and all(image_ref(im, which) is not None for im in images)


def read_views(ts: TiltSeries, images: list[TiltImage] | None = None, *, which: str = "image") -> torch.Tensor:
    """Images ``(v, h, w)`` float32 of ``images`` (default all views, in record order).

    ``which`` is ``image``, ``even`` or ``odd``. A view without that image is an InputError.
    """
    images = ts.images if images is None else images
    out = []
    for im in images:
        ref = image_ref(im, which)
        if ref is None:
            raise InputError(f"tilt series {ts.ts_id}: the view at {im.tilt_angle_deg:g}° (acquisition order "
                             f"{im.acquisition_order}) has no {which} image", field=which,
                             expected="motion-corrected images (run motion-correct first)")
        out.append(np.array(read_section(ref.path, ref.index), dtype=np.float32))
    shapes = {a.shape for a in out}
    if len(shapes) > 1:
        raise InputError(f"tilt series {ts.ts_id}: views have different shapes {sorted(shapes)}",
                         expected="one image size per tilt series")
    return torch.from_numpy(np.stack(out)) if out else torch.zeros(0, 1, 1)


def write_stack(path: Path, views: torch.Tensor, pixel_size_a: float) -> list[ImageRef]:
    """Write ``(v, h, w)`` as an MRC stack; returns one ImageRef per section."""
    write_mrc(path, views.to(torch.float32), pixel_size_a, stack=True)
    return [ImageRef(path=str(path), index=i) for i in range(views.shape[0])]


def with_images(ts: TiltSeries, refs: list[ImageRef], images: list[TiltImage] | None = None, *,
                which: str = "image", **updates) -> TiltSeries:
    """A copy of ``ts`` whose ``images`` (default all, in order) point at ``refs``; ``updates`` go on the series.

    Views not in ``images`` are dropped (re-stacking); their bookkeeping stays on the ones kept.
    """
    images = ts.images if images is None else images
    new_images = [im.model_copy(update={which: ref}) for im, ref in zip(images, refs, strict=True)]
    return ts.model_copy(update={"images": new_images, **updates}, deep=True)


def stack_name(ctx_out: Path, ts_id: str, suffix: str = "") -> Path:
    return ctx_out / f"{ts_id}{suffix}.mrcs"
