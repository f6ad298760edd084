"""Typed records (pydantic). Every value carries its unit in its name."""

from tomoforge.model.acquisition import Acquisition
from tomoforge.model.alignment import AlignmentReport
from tomoforge.model.coordinates import Coordinates3D, Particle, Particles
from tomoforge.model.ctf import CtfEstimate
from tomoforge.model.landmarks import LandmarkBead, LandmarkModel
from tomoforge.model.motion import MotionShifts
from tomoforge.model.tilt_series import (
    ImageRef,
    MovieRef,
    TiltImage,
    TiltSeries,
    TiltSeriesSet,
    Transform2D,
)
from tomoforge.model.tomogram import Tomogram

__all__ = [
    "Acquisition", "AlignmentReport", "CtfEstimate", "Coordinates3D", "ImageRef", "LandmarkBead", "LandmarkModel", "MotionShifts", "MovieRef", "Particle", "Particles",
    "TiltImage", "TiltSeries", "TiltSeriesSet", "Tomogram", "Transform2D",
]
