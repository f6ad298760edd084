"""A simulated tilt series as a TiltSeries record on disk, for the CTF step tests (no project needed)."""

from __future__ import annotations

from pathlib import Path

from tomoforge.io.sim_session import load_truth, simulate_case
from tomoforge.model import Acquisition, ImageRef, TiltImage, TiltSeries, Transform2D
from tomoforge.steps.base import InputArtifact, Unit, UnitContext, execute_unit


def simulated_series(root: Path, seed: int = 0, size: int = 384, tilts: str = "0,20,-20,40,-40", **overrides):
    """Simulate the ``particles`` case and return ``(record path, TiltSeries, truth series)``."""
    truth_path = simulate_case("particles", root / "session", seed=seed, overrides={
        "n_tilt_series": 1, "movie_format": "none", "write_stack": True, "frames_per_movie": 1,
        "image_size_px": size, "tilt_scheme": "custom", "custom_tilts_deg": tilts, **overrides})
    truth = load_truth(truth_path).tilt_series[0]
    a = truth.acquisition
    stack = str(root / "session" / truth.stack)
    images = [TiltImage(tilt_angle_deg=v.tilt_deg, nominal_tilt_angle_deg=v.nominal_tilt_deg,
                        acquisition_order=v.acquisition_order, dose_e_per_a2=v.dose_e_per_a2,
                        accumulated_dose_e_per_a2=v.accumulated_dose_e_per_a2,
                        image=ImageRef(path=stack, index=v.stack_section),
                        transform=Transform2D.from_rows(v.xf), target_defocus_um=a.target_defocus_um)
              for v in truth.views]
    ts = TiltSeries(ts_id=truth.ts_id, image_shape_yx=tuple(a.image_size_yx), images=images,
                    acquisition=Acquisition(voltage_kv=a.voltage_kv, cs_mm=a.cs_mm,
                                            amplitude_contrast=a.amplitude_contrast, pixel_size_a=a.pixel_size_a,
                                            tilt_axis_deg=a.tilt_axis_nominal_deg,
                                            dose_per_tilt_e_per_a2=a.dose_per_tilt_e_per_a2))
    return write_record(root / "input" / f"{ts.ts_id}.json", ts), ts, truth


def write_record(path: Path, record) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(record.model_dump_json(indent=1))
    return path


def artifact(path: Path, key: str, port: str = "tilt_series", type_: str = "TiltSeries") -> InputArtifact:
    return InputArtifact(artifact_id=0, port=port, key=key, type=type_, path=str(path))


def run_step(step_cls, params: dict, inputs: dict[str, list[InputArtifact]], job_dir: Path):
    """plan + run every unit in-process; returns the unit results."""
    step = step_cls()
    p = step_cls.Params.model_validate(params)
    units: list[Unit] = step.plan(p, inputs)
    job_dir.mkdir(parents=True, exist_ok=True)
    return [execute_unit(step_cls, p.model_dump_json(), u, str(job_dir)) for u in units]


__all__ = ["UnitContext", "artifact", "run_step", "simulated_series", "write_record"]
