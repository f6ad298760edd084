"""A physical simulator of tilt-series acquisitions with ground truth (docs/simulator.md).

Pure computation: specimen (specimen.py, build.py), projection (projection.py), optics (optics.py,
imaging.py), motion (motion.py), camera (detector.py), acquisition planning and rendering (simulate.py),
truth volumes (volume.py), the truth schema (truth.py) and the named cases (cases.py).
Files are written by tomoforge.io.sim_session.
"""
