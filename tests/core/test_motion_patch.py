"""Patch motion: with a local deformation, the patch model beats the full-frame model."""

from __future__ import annotations

import torch

from tomoforge.core.motion import estimate_global_shifts, estimate_patch_motion, sum_frames, warp_frame

from motion_testdata import correlation, crop_centre, drift, texture, warp_movie


def _deformed_movie(seed: int, n: int = 8, size: int = 256, dose: float = 1.0):
    signal = texture((size + 64, size + 64), seed, sigma_px=2.0)
    glob = drift(n, seed, 5.0)

    def field(t, yy, xx):
        tt = t / (n - 1)
        u, v = (xx - (size - 1) / 2) / size, (yy - (size - 1) / 2) / size
        return glob[t, 0] + 4 * tt * (u * u - v), glob[t, 1] + 4 * tt * (u * v + u)

    return warp_movie(signal, field, n, (size, size), dose, seed + 1)


def _field_rms(fields_est: torch.Tensor, fields_true: torch.Tensor) -> float:
    # per-pixel gauge: only motion during the exposure is defined
    e = fields_est - fields_true
    e = e - e.mean(0, keepdim=True)
    return float((e ** 2).sum(-1).mean().sqrt())


def test_patch_model_beats_full_frame_on_local_deformation():
    for seed in (0, 4):
        frames, clean, true_fields = _deformed_movie(seed)
        n, h, w = frames.shape
        glob = estimate_global_shifts(frames, b_factor_a2=300)
        model = estimate_patch_motion(frames, glob, n_patches_yx=(4, 4), b_factor_a2=500)
        truth = true_fields.permute(0, 2, 3, 1)  # (n, h, w, 2)
        patch_fields = torch.stack([model.field(i) for i in range(n)])
        global_fields = glob[:, None, None, :].expand_as(truth)
        err_patch, err_global = _field_rms(patch_fields, truth), _field_rms(global_fields, truth)
        assert err_patch < 0.25 and err_patch < 0.5 * err_global, (err_patch, err_global)
        inner = (h - 40, w - 40)
        cc_g = correlation(crop_centre(sum_frames(frames, shifts=glob).total, inner), crop_centre(clean, inner))
        cc_p = correlation(crop_centre(sum_frames(frames, deformation=model).total, inner), crop_centre(clean, inner))
        assert cc_p > cc_g + 0.02, (cc_g, cc_p)


def test_patch_model_is_flat_without_local_motion():
    signal = texture((320, 320), 9, sigma_px=2.0)
    glob = drift(8, 9, 4.0)
    frames, _, _ = warp_movie(signal, lambda t, yy, xx: (glob[t, 0] + 0 * yy, glob[t, 1] + 0 * xx), 8,
                              (256, 256), 2.0, 3)
    model = estimate_patch_motion(frames, n_patches_yx=(4, 4))
    local = torch.stack([model.field(i) - model.global_shifts[i].float() for i in range(8)])
    assert float((local ** 2).sum(-1).mean().sqrt()) < 0.15 and float(local.abs().max()) < 0.5
    assert model.coefficients.shape == (2, 18)


def test_warp_frame_matches_integer_shift():
    img = texture((64, 64), 1)
    field = torch.zeros(64, 64, 2)
    field[..., 0], field[..., 1] = 2.0, -3.0
    out = warp_frame(img, field)  # out(p) = img(p + (2, -3))
    assert torch.allclose(out[5:50, 10:60], img[7:52, 7:57], atol=1e-4)
