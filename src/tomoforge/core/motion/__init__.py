"""Movie frame alignment: full-frame shifts, a patch deformation model, gain/defects, corrected sums.

Shift convention for the whole package: ``(dy, dx)`` in input pixels, the displacement of a frame's content
(see :mod:`tomoforge.core.motion.global_motion`).
"""

from tomoforge.core.motion.gain import (
    apply_gain,
    correct_defects,
    defect_mask_from_coordinates,
    defects_from_gain,
)
from tomoforge.core.motion.global_motion import estimate_global_shifts, frame_outliers
from tomoforge.core.motion.patch_motion import PatchMotion, estimate_patch_motion, warp_frame
from tomoforge.core.motion.summing import MovieSums, frame_indices, sum_frames

__all__ = [
    "MovieSums", "PatchMotion", "apply_gain", "correct_defects", "defect_mask_from_coordinates",
    "defects_from_gain", "estimate_global_shifts", "estimate_patch_motion", "frame_indices", "frame_outliers", "sum_frames", "warp_frame",
]
