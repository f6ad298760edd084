"""tomoforge: cryo-electron tomography from movies to tomograms and subtomogram averages."""

__version__ = "0.1.0"
