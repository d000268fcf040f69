"""Writing behind the caller on one thread, so encoding Parquet overlaps with decoding."""
from __future__ import annotations

import queue
import threading
from typing import Any


class WriteBehind:
    """Runs write jobs in order on one thread, at most `depth` behind the caller: Parquet encoding
    releases the GIL, so writing a chunk overlaps with decoding and validating the next one, and
    memory stays bounded by `depth` chunks. A job's error surfaces at the next submit or at close."""

    def __init__(self, depth: int = 3) -> None:
        self._jobs: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        # Set by the thread as it ends. Waiting on this rather than on Thread.join: on 3.11 an
        # interrupted join() marks a thread that is still running as stopped.
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._work, name="lockstep-write-behind", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        try:
            while True:
                job = self._jobs.get()
                if job is None:
                    return
                if self._error is None:
                    try:
                        job()
                    except BaseException as e:  # handed to the caller
                        self._error = e
        finally:
            self._done.set()

    def submit(self, job: Any) -> None:
        self._raise()
        self._jobs.put(job)

    def close(self) -> None:
        """Waits for every job; raises the first error. A Ctrl-C while waiting is held until the
        thread has finished: closing files under a job still writing them corrupts them, and the
        caller's cleanup would then fail with that instead of saying it was interrupted."""
        interrupted: KeyboardInterrupt | None = None
        if not self._done.is_set():
            self._jobs.put(None)
            while not self._done.is_set():
                try:
                    self._done.wait()
                except KeyboardInterrupt as e:
                    interrupted = e
        if interrupted is not None:
            raise interrupted
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

