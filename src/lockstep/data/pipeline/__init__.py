"""The data path: raw -> normalized -> validated -> canonical or quarantine (docs/data.md).

`import_data` runs it in one streaming pass over the inputs, memory bounded by a chunk:

1. raw (raw.py): the inputs are copied, byte for byte, to ``ROOT/raw/<name>/<import id>/`` (the
   import id is a digest of their contents, so importing the same bytes again reuses the copy);
2. normalize (normalize.py): the format's decoder (lockstep.data.importers.FORMATS) turns records
   into canonical events, each event tied to its record; they are written to
   ``ROOT/normalized/<name>/<import id>/``;
3. validate (validate.py, rules.py): lockstep._bindings.validate.Validator gives every record a
   verdict (rules in docs/data.md);
4. promote (promote.py, quarantine.py): promoted records' events (plus a GAP marker wherever a book
   became invalid) go to a new version of ``ROOT/canonical/<name>``, whose manifest holds the
   validation report; the others go to ``ROOT/quarantine/<name>/<import id>/`` with their rule,
   reason, positions and raw bytes.

run.py strings the steps together; stored.py runs validation or promotion alone on what the root
stores; catalogue.py lists the root and shows a dataset; report.py is what every step reports.

For every import: records_canonical + records_quarantined == records_read.
"""
from lockstep.data.pipeline.catalogue import describe_dataset, list_storage, show_dataset
from lockstep.data.pipeline.normalize import decode, read_normalized
from lockstep.data.pipeline.quarantine import RULE_MEANING, reason_text
from lockstep.data.pipeline.report import ImportResult
from lockstep.data.pipeline.rules import (
    ACTIONS,
    DEFAULT_ACTIONS,
    DEFAULT_MAX_FEED_LATENCY_NS,
    DEFAULT_MIN_FEED_LATENCY_NS,
    ValidationConfig,
    parse_duration_ns,
)
from lockstep.data.pipeline.run import STEPS, default_name, import_data
from lockstep.data.pipeline.stored import promote_source, resolve_source, validate_source
from lockstep.errors import PipelineError

__all__ = [
    "ACTIONS", "DEFAULT_ACTIONS", "DEFAULT_MAX_FEED_LATENCY_NS", "DEFAULT_MIN_FEED_LATENCY_NS", "RULE_MEANING",
    "STEPS", "ImportResult", "PipelineError", "ValidationConfig", "decode", "default_name", "describe_dataset",
    "import_data", "list_storage", "parse_duration_ns", "promote_source", "read_normalized", "reason_text",
    "resolve_source", "show_dataset", "validate_source",
]
