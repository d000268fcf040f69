"""The import's write-behind thread: jobs in order, errors handed back, and a Ctrl-C while closing
never leaves a job writing under the caller's cleanup."""
from __future__ import annotations

import signal
import threading
import time

import pytest

from lockstep.data.pipeline.write_behind import WriteBehind


def test_jobs_run_in_order_and_an_error_surfaces_at_close():
    done: list[int] = []
    behind = WriteBehind(depth=2)
    for k in range(10):
        behind.submit(lambda k=k: done.append(k))
    behind.submit(lambda: 1 / 0)
    behind.submit(lambda: done.append(99))  # after an error, later jobs are skipped
    with pytest.raises(ZeroDivisionError):
        behind.close()
    assert done == list(range(10))


def test_ctrl_c_while_closing_waits_for_the_running_job_then_is_raised():
    finished = threading.Event()
    closing = threading.Event()

    def slow_job() -> None:
        assert closing.wait(10)
        time.sleep(0.05)  # the caller is now waiting in close()
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # Ctrl-C
        time.sleep(0.3)
        finished.set()

    behind = WriteBehind()
    put = behind._jobs.put

    def put_and_tell(item):
        put(item)
        if item is None:  # close() has asked the thread to finish
            closing.set()

    behind._jobs.put = put_and_tell
    behind.submit(slow_job)
    with pytest.raises(KeyboardInterrupt):
        behind.close()
    assert finished.is_set(), "close() returned while the job was still writing"
