"""Gold-bead erasing in tilt images (model-based, in the spirit of fidder / IMOD ccderaser).

Beads are found in every view near where their 3D positions project (or, without 3D positions, by
template matching), then each bead disc is replaced by noise with the local mean (from a ring around the
bead) and the view's global standard deviation, so no dark spot is left for back-projection to smear
into streaks.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from tomoforge.core.geometry import project_points


def bead_template(radius_px: float, size: int | None = None, *, device=None) -> torch.Tensor:
    """Soft-edged disc ``(s, s)`` of value 1 inside ``radius_px`` (a bead's projected density)."""
    size = size or int(2 * math.ceil(radius_px + 2) + 1)
    c = (size - 1) / 2
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32, device=device) - c,
                            torch.arange(size, dtype=torch.float32, device=device) - c, indexing="ij")
    r = torch.sqrt(xx**2 + yy**2)
    return torch.clamp(radius_px + 0.5 - r, 0.0, 1.0)


def _ncc_map(image: torch.Tensor, template: torch.Tensor) -> torch.Tensor:
    """Normalised cross-correlation ``(H, W)`` of a template with every window of ``image``."""
    t = template - template.mean()
    t = t / t.norm().clamp(min=1e-12)
    k = t.shape[-1]
    x = image[None, None].float()
    pad = k // 2
    num = F.conv2d(F.pad(x, (pad,) * 4, mode="reflect"), t[None, None].float())
    ones = torch.ones_like(t)[None, None].float() / t.numel()
    mean = F.conv2d(F.pad(x, (pad,) * 4, mode="reflect"), ones)
    mean_sq = F.conv2d(F.pad(x * x, (pad,) * 4, mode="reflect"), ones)
    sd = (mean_sq - mean**2).clamp(min=0).sqrt() * math.sqrt(t.numel())
    return (num / sd.clamp(min=1e-12))[0, 0]


def project_beads(points_xyz: torch.Tensor, tilt_deg, xf: torch.Tensor, image_shape,
                  x_tilt_deg: float = 0.0) -> torch.Tensor:
    """Raw positions ``(v, n, 2)`` of beads ``(n, 3)`` (unbinned pixels from the tomogram centre)."""
    return project_points(points_xyz, torch.as_tensor(tilt_deg, dtype=torch.float64), xf, image_shape,
                          x_tilt_deg=x_tilt_deg)


def refine_bead_positions(images: torch.Tensor, predicted_xy: torch.Tensor, radius_px: float, *,
                          search_px: float = 6.0, dark: bool = True) -> torch.Tensor:
    """Move each predicted bead ``(v, n, 2)`` to the best template match within ``search_px``.

    Sub-pixel by a parabolic fit of the correlation peak; a bead whose best match is weak (NCC < 0.2) or
    outside the image keeps its predicted position. images: ``(v, H, W)``.
    """
    out = predicted_xy.clone().to(torch.float64)
    tmpl = bead_template(radius_px, device=images.device)
    if dark:
        tmpl = -tmpl
    h, w = images.shape[-2:]
    half = int(math.ceil(search_px + radius_px + 3))
    s = int(math.ceil(search_px))
    p = half + int(math.ceil(radius_px)) + 6  # padding so beads near an edge can still be refined
    for i in range(images.shape[0]):
        view = F.pad(images[i][None, None].float(), (p,) * 4, mode="replicate")[0, 0]
        for j in range(predicted_xy.shape[1]):
            px, py = (float(a) for a in predicted_xy[i, j])
            if not (0 <= px <= w - 1 and 0 <= py <= h - 1):
                continue
            cx, cy = round(px), round(py)
            x0, y0 = cx - half + p, cy - half + p
            ncc = _ncc_map(view[y0:y0 + 2 * half + 1, x0:x0 + 2 * half + 1], tmpl)
            core = ncc[half - s:half + s + 1, half - s:half + s + 1]
            k = int(torch.argmax(core))
            ky, kx = divmod(k, core.shape[1])
            if float(core[ky, kx]) < 0.2:
                continue
            dy = dx = 0.0
            if 0 < ky < core.shape[0] - 1:
                a, b, c = (float(core[ky + o, kx]) for o in (-1, 0, 1))
                dy = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) < 0 else 0.0
            if 0 < kx < core.shape[1] - 1:
                a, b, c = (float(core[ky, kx + o]) for o in (-1, 0, 1))
                dx = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) < 0 else 0.0
            bx, by = cx + (kx - s) + dx + p, cy + (ky - s) + dy + p
            fx, fy = _centroid_on_plane(view, bx, by, radius_px, dark)
            out[i, j, 0], out[i, j, 1] = fx - p, fy - p
    return out


def _centroid_on_plane(image: torch.Tensor, px: float, py: float, radius_px: float, dark: bool,
                       rounds: int = 3) -> tuple[float, float]:
    """Centroid of the bead's density after removing a plane fitted to a ring around it.

    Template correlation is pulled towards a background gradient (a bead on the edge of dense
    material); the plane-subtracted centroid is not. Falls back to the input if anything degenerates.
    """
    h, w = image.shape
    reach = radius_px + 5
    x, y = px, py
    for _ in range(rounds):
        x0, x1 = int(math.floor(x - reach)), int(math.ceil(x + reach)) + 1
        y0, y1 = int(math.floor(y - reach)), int(math.ceil(y + reach)) + 1
        if x0 < 0 or y0 < 0 or x1 > w or y1 > h:
            return px, py
        patch = image[y0:y1, x0:x1].double().cpu()
        yy, xx = torch.meshgrid(torch.arange(y0, y1, dtype=torch.float64),
                                torch.arange(x0, x1, dtype=torch.float64), indexing="ij")
        r2 = (xx - x) ** 2 + (yy - y) ** 2
        ring = (r2 > (radius_px + 2) ** 2) & (r2 <= reach**2)
        design = torch.stack([torch.ones_like(xx[ring]), xx[ring], yy[ring]], -1)
        coef = torch.linalg.lstsq(design, patch[ring][:, None]).solution[:, 0]
        resid = patch - (coef[0] + coef[1] * xx + coef[2] * yy)
        mass = (-resid if dark else resid).clamp(min=0) * (r2 <= (radius_px + 1) ** 2)
        total = float(mass.sum())
        if total <= 0:
            return px, py
        nx, ny = float((mass * xx).sum()) / total, float((mass * yy).sum()) / total
        if math.hypot(nx - px, ny - py) > radius_px:
            return px, py
        x, y = nx, ny
    return x, y


def noise_sd(image: torch.Tensor) -> float:
    """Robust pixel-noise SD of a view ``(H, W)`` from the MAD of horizontal neighbour differences
    (insensitive to beads and to smooth specimen density)."""
    diff = (image[..., :, 1:] - image[..., :, :-1]).flatten().float()
    return float(diff.abs().median()) / 0.6745 / math.sqrt(2.0)


def detect_beads(image: torch.Tensor, radius_px: float, *, threshold: float = 0.5, dark: bool = True,
                 min_contrast_sd: float = 3.0, relative_contrast: float = 0.4,
                 max_beads: int = 500) -> torch.Tensor:
    """Template-matching bead finder for one view ``(H, W)``: positions ``(n, 2)`` ``(x, y)``.

    Candidates are peaks of the normalised cross-correlation with a disc above ``threshold``, at least
    one bead diameter apart. Correlation ignores amplitude, so specimen features of bead size also
    match; a bead must also be darker than its ring by ``min_contrast_sd`` noise SDs and by
    ``relative_contrast`` times the 90th percentile of the candidates' contrasts (gold is far denser
    than the specimen). Positions are refined by a plane-corrected centroid.
    """
    tmpl = bead_template(radius_px, device=image.device)
    ncc = _ncc_map(image, -tmpl if dark else tmpl)
    k = int(2 * math.ceil(radius_px) + 1)
    pooled = F.max_pool2d(ncc[None, None], k, stride=1, padding=k // 2)[0, 0]
    peaks = (ncc >= pooled) & (ncc > threshold)
    ys, xs = torch.nonzero(peaks, as_tuple=True)
    order = torch.argsort(ncc[ys, xs], descending=True)[:max_beads]
    cand = torch.stack([xs[order], ys[order]], -1).to(torch.float64).cpu()
    if cand.shape[0] == 0:
        return cand
    sign = 1.0 if dark else -1.0
    contrast = torch.empty(cand.shape[0], dtype=torch.float64)
    img = image.double().cpu()
    h, w = img.shape
    yy = torch.arange(h, dtype=torch.float64)[:, None]
    xx = torch.arange(w, dtype=torch.float64)[None, :]
    for n, (px, py) in enumerate(cand.tolist()):
        r2 = (yy - py) ** 2 + (xx - px) ** 2
        ring = (r2 > (radius_px + 2) ** 2) & (r2 <= (radius_px + 6) ** 2)
        contrast[n] = sign * (img[ring].mean() - img[r2 <= radius_px**2].mean())
    contrast = contrast / max(noise_sd(image), 1e-12)
    floor = max(min_contrast_sd, relative_contrast * float(torch.quantile(contrast, 0.9)))
    keep = cand[contrast >= floor]
    refined = [_centroid_on_plane(img, px, py, radius_px, dark) for px, py in keep.tolist()]
    return torch.tensor(refined, dtype=torch.float64).reshape(-1, 2)


def erase_beads(images: torch.Tensor, positions_xy: torch.Tensor, radius_px: float, *,
                dilate_px: float = 1.5, ring_px: float = 4.0, generator: torch.Generator | None = None,
                global_sd: torch.Tensor | None = None) -> torch.Tensor:
    """Replace bead discs with noise. images ``(v, H, W)``, positions ``(v, n, 2)`` raw ``(x, y)``.

    Pixels within ``radius_px + dilate_px`` of a bead get ``local mean + global SD * N(0, 1)``; the
    local mean comes from a ``ring_px`` wide ring outside the erased disc (excluding other beads), the
    SD is the view's outside all bead discs (or ``global_sd`` ``(v,)``). Returns a new stack.
    """
    out = images.clone().float()
    v, h, w = images.shape
    rad = radius_px + dilate_px
    yy = torch.arange(h, device=images.device, dtype=torch.float32)[:, None]
    xx = torch.arange(w, device=images.device, dtype=torch.float32)[None, :]
    for i in range(v):
        pos = positions_xy[i].to(torch.float32).to(images.device)
        if pos.numel() == 0:
            continue
        img = out[i]
        # Every bead's disc, so rings never sample a neighbouring bead.
        all_discs = torch.zeros((h, w), dtype=torch.bool, device=images.device)
        boxes = []
        for px, py in pos.tolist():
            r_out = rad + ring_px
            y0, y1 = max(0, int(py - r_out) - 1), min(h, int(py + r_out) + 2)
            x0, x1 = max(0, int(px - r_out) - 1), min(w, int(px + r_out) + 2)
            if y0 >= y1 or x0 >= x1:
                boxes.append(None)
                continue
            r2 = (yy[y0:y1] - py) ** 2 + (xx[:, x0:x1] - px) ** 2
            all_discs[y0:y1, x0:x1] |= r2 <= rad**2
            boxes.append((y0, y1, x0, x1, r2))
        # The view's SD without the beads themselves (they would inflate it several-fold).
        sd = float(img[~all_discs].std()) if global_sd is None else float(global_sd[i])
        for box in boxes:
            if box is None:
                continue
            y0, y1, x0, x1, r2 = box
            disc = r2 <= rad**2
            ring = (r2 > rad**2) & (r2 <= (rad + ring_px) ** 2) & ~all_discs[y0:y1, x0:x1]
            if not bool(disc.any()):
                continue
            local = img[y0:y1, x0:x1]
            mean = float(local[ring].mean()) if bool(ring.any()) else float(img.mean())
            noise = torch.randn(int(disc.sum()), generator=generator, dtype=torch.float32).to(img.device)
            local[disc] = mean + sd * noise
    return out


def bead_contrast(images: torch.Tensor, positions_xy: torch.Tensor, radius_px: float, *,
                  ring_px: float = 4.0) -> torch.Tensor:
    """How dark each bead still is, in local SDs: ``(ring mean - disc mean) / ring SD`` ``(v, n)``.

    The ring starts 2 px outside the disc; ``nan`` where the ring leaves the image. Multiply by
    ``sqrt(disc pixels)`` for the z-score of the disc mean (~N(0, 1) once a bead is erased).
    """
    v, h, w = images.shape
    out = torch.full(positions_xy.shape[:2], float("nan"), dtype=torch.float64)
    yy = torch.arange(h, dtype=torch.float64)[:, None]
    xx = torch.arange(w, dtype=torch.float64)[None, :]
    reach = radius_px + 2 + ring_px
    for i in range(v):
        img = images[i].double().cpu()
        for j, (px, py) in enumerate(positions_xy[i].tolist()):
            if px - reach < 0 or py - reach < 0 or px + reach > w - 1 or py + reach > h - 1:
                continue
            r2 = (yy - py) ** 2 + (xx - px) ** 2
            disc = r2 <= radius_px**2
            ring = (r2 > (radius_px + 2) ** 2) & (r2 <= reach**2)
            r = img[ring]
            out[i, j] = (r.mean() - img[disc].mean()) / r.std()
    return out
