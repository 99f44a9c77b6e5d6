"""The private side: Pub/Sub pushes in, SaaSquatch calls out, dead letters for what cannot go.

`create_handler(DeliverSettings.from_env())` is what `main.deliver` serves; a test builds one
from a settings object it made itself.
"""

from .handler import create_handler
from .settings import DeliverSettings

__all__ = ["DeliverSettings", "create_handler"]
