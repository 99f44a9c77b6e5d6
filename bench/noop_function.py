"""The floor for the ingest benchmark: a Functions Framework function that does nothing."""

import functions_framework


@functions_framework.http
def noop(request):
    return "ok"
