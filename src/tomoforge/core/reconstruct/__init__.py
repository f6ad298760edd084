"""Tomogram reconstruction: WBP (ramp, roll-offs, SIRT-like), SIRT, slab-wise, raw views + .xf."""

from tomoforge.core.reconstruct.projector import backproject_slab, forward_project_slab, voxel_to_raw_affine
from tomoforge.core.reconstruct.sirt import reconstruct_sirt
from tomoforge.core.reconstruct.wbp import reconstruct_wbp

__all__ = ["backproject_slab", "forward_project_slab", "reconstruct_sirt", "reconstruct_wbp",
           "voxel_to_raw_affine"]
