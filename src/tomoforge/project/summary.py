"""A job as plain JSON: params, inputs, outputs, metrics, units (for the CLI and the web UI)."""

from __future__ import annotations

from typing import Any

from tomoforge.project.store import ArtifactRow, Project


def artifact_json(project: Project, a: ArtifactRow) -> dict[str, Any]:
    return {"id": a.id, "job": a.job, "key": a.key, "type": a.type, "uri": a.uri,
            "path": str(project.resolve(a.uri)), "meta": a.meta}


def job_summary(project: Project, job_id: int) -> dict[str, Any]:
    j = project.job(job_id)
    outputs: dict[str, list] = {}
    for a in project.artifacts(job_id):
        outputs.setdefault(a.port, []).append(artifact_json(project, a))
    return {
        "id": j.id, "step": j.step, "status": j.status, "folder": str(project.job_dir(j)), "message": j.message,
        "started": j.started, "finished": j.finished,
        "params": project.job_params(job_id), "metrics": j.metrics,
        "inputs": {p: [artifact_json(project, a) for a in arts] for p, arts in project.job_inputs(job_id).items()},
        "links": {p: [{"job": sj, "output": sp} for sj, sp in refs] for p, refs in project.links(job_id).items()},
        "outputs": outputs,
        "units": [{"key": u.key, "status": u.status, "attempts": u.attempts, "metrics": u.metrics,
                   "error": u.error} for u in project.units(job_id)],
    }
