"""The default preset's `align` step: route choice and automatic exclusion of alignment outliers."""

from tomoforge.model import AlignmentReport, TiltImage, TiltSeries
from tomoforge.model.acquisition import Acquisition
from tomoforge.steps.align_auto import exclude_residual_outliers


def _series(n: int) -> TiltSeries:
    return TiltSeries(ts_id="TS_01", acquisition=Acquisition(pixel_size_a=2.0),
                      images=[TiltImage(tilt_angle_deg=-30 + 6 * i, acquisition_order=i) for i in range(n)])


def _report(resid) -> AlignmentReport:
    return AlignmentReport(ts_id="TS_01", method="fiducials", tilt_deg=[-30 + 6 * i for i in range(len(resid))],
                           residual_px=resid, residual_mean_nm=0.1, residual_sd_nm=0.05, tilt_axis_deg=85.0,
                           pretilt_deg=0.0, thickness_nm=50.0, points=12)


def test_a_view_far_off_is_excluded_with_its_reason():
    ts = _series(11)
    resid = [0.3, 0.35, 0.28, 0.31, 4.2, 0.33, 0.29, None, 0.32, 0.3, 0.36]
    lines = exclude_residual_outliers(ts, _report(resid), 6.0)
    assert [im.acquisition_order for im in ts.images if im.excluded] == [4]
    assert "alignment: residual 4.20 px" in ts.images[4].exclude_reason and len(lines) == 1


def test_ordinary_scatter_and_off_switch_exclude_nothing():
    ts = _series(11)
    resid = [0.3, 0.35, 0.28, 0.31, 0.52, 0.33, 0.29, 0.41, 0.32, 0.3, 0.36]
    assert exclude_residual_outliers(ts, _report(resid), 6.0) == []
    assert exclude_residual_outliers(_series(11), _report([0.3] * 10 + [9.0]), None) == []
    assert not any(im.excluded for im in ts.images)
