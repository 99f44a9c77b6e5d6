"""The public side: Segment's requests in, raw events on Pub/Sub out.

`create_handler(IngestSettings.from_env())` is what `main.ingest` serves; a test builds one from a
settings object it made itself.
"""

from .handler import create_handler
from .settings import IngestSettings

__all__ = ["IngestSettings", "create_handler"]
