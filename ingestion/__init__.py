"""The public side: Segment's requests (and SaaSquatch's webhooks) in, Pub/Sub messages out.

`create_handler(IngestSettings.from_env())` is what `main.ingest` serves and
`create_webhook_handler(WebhookSettings.from_env())` what `main.saasquatch_webhook` serves; a
test builds either from a settings object it made itself.
"""

from .handler import create_handler
from .settings import IngestSettings
from .webhook_settings import WebhookSettings
from .webhooks import create_handler as create_webhook_handler

__all__ = ["IngestSettings", "WebhookSettings", "create_handler", "create_webhook_handler"]
