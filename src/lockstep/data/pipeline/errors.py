"""The data path's own error."""
from __future__ import annotations

from lockstep.errors import LockstepError


class PipelineError(LockstepError):
    """A step of the data path cannot run (bad arguments, missing inputs, unknown dataset)."""
