"""The local process pool: one GPU per worker when GPUs are given (no GPU is needed to check the dealing)."""

import time

from tomoforge.execution.local import LocalExecutor, worker_gpu


def _which_gpu(_: int) -> str | None:
    time.sleep(0.3)  # keep this worker busy so the other one takes the next task
    return worker_gpu()


def test_gpus_are_dealt_one_per_worker():
    ex = LocalExecutor(workers=2, threads_per_worker=1, gpus=["0", "1"])
    try:
        seen = {f.result() for f in [ex.submit(_which_gpu, i) for i in range(6)]}
    finally:
        ex.shutdown()
    assert seen == {"0", "1"}


def test_no_gpus_leaves_the_environment_alone(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "7")  # inherited by the spawned worker, and not overwritten
    ex = LocalExecutor(workers=1, threads_per_worker=1)
    try:
        assert ex.submit(worker_gpu).result() == "7"
    finally:
        ex.shutdown()
