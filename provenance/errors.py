"""The exceptions provenance raises on bad input, each with a one-line message that names the
input and the fix. The CLI prints ``error: <message>`` and exits 2; it never shows a traceback.

    ProvenanceError
     +-- SpecError          a model string, audit file or CLI option is malformed
     +-- ModelError         a model cannot be loaded or asked (missing path, bad weights)
     |    +-- TranscriptError   a transcripts file is missing, malformed or lacks the model
     +-- BatteryError       a battery is missing or fails its schema
     +-- StoreError         the SQLite store is unreadable or of another schema version
     +-- ScoringError       a scorer or its data file is unusable
     +-- CollectionIncomplete  a cap stopped collection, or some models failed (what was
                               collected is stored; the same command resumes)
"""


class ProvenanceError(Exception):
    """Base of every error provenance raises on purpose."""


class SpecError(ProvenanceError):
    """A model string, audit file or option is malformed."""


class ModelError(ProvenanceError):
    """A model cannot be loaded or asked."""


class TranscriptError(ModelError):
    """A transcripts file is missing, malformed or lacks the chosen model."""


class BatteryError(ProvenanceError):
    """A battery is missing or fails its schema."""


class StoreError(ProvenanceError):
    """The store is unreadable or of an incompatible schema version."""


class ScoringError(ProvenanceError):
    """A scorer or its data is unusable."""


class CollectionIncomplete(ProvenanceError):
    """Collection ended early: a cap (--max-cost, --max-requests) was reached or some API
    models failed for good. Everything collected is stored; running again resumes.
    ``lines`` holds one sentence per cause; ``at_cap`` says a cap (not a failure) stopped it."""

    def __init__(self, lines: list[str], *, at_cap: bool):
        super().__init__("\n".join(lines))
        self.lines = list(lines)
        self.at_cap = at_cap
