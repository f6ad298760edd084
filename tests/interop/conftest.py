"""One simulated, imported and 'truth-aligned' project shared by the interop tests (read-only for them)."""

from __future__ import annotations

import pytest

from interop_project import build_tiny_project


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    return build_tiny_project(tmp_path_factory.mktemp("interop"))


@pytest.fixture(scope="session")
def imod_export(tiny, tmp_path_factory):
    from tomoforge.interop.export_imod import export_imod

    out = tmp_path_factory.mktemp("imod_export")
    return export_imod(tiny.project, out, job=tiny.truth_job)


@pytest.fixture(scope="session")
def relion_export(tiny, tmp_path_factory):
    from tomoforge.interop.export_relion import export_relion

    out = tmp_path_factory.mktemp("relion_export")
    export_relion(tiny.project, out, job=tiny.truth_job)
    return out
