"""The private side: Pub/Sub pushes in; SaaSquatch calls (deliver) or Segment calls (forward)
out; dead letters for what cannot go.

`create_handler(DeliverSettings.from_env())` is what `main.deliver` serves and
`create_forward_handler(ForwardSettings.from_env())` what `main.forward` serves; a test builds
either from a settings object it made itself.
"""

from .forward import create_handler as create_forward_handler
from .forward_settings import ForwardSettings
from .handler import create_handler
from .settings import DeliverSettings

__all__ = ["DeliverSettings", "ForwardSettings", "create_forward_handler", "create_handler"]
