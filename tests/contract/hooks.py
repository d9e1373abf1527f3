"""Schemathesis hooks for the contract run (`tests/contract/run`).

Generated specs that the server accepts start real jobs. Before each
request, every place a generated body names on the host is pointed inside
the run's temporary folder or at loopback, so the run never writes or
reads files elsewhere, listens beyond loopback or sends traffic off the
machine, whatever the server's own confinement allows:

* `path`, `offset_file` (files, SQLite databases) -> a relative name,
  resolved in the server's working directory, the run's temporary folder;
* `url` (http operations and sinks, PostgreSQL) -> a closed loopback port;
* `bind` (tcp and http_ingest sources) -> loopback, a free port.

Only values of those keys change, to values of the same type, so a case
stays as schema-valid (or not) as it was generated.
"""

import re

import schemathesis

# Nothing listens on port 9 (discard) here: connections are refused at once.
CLOSED_LOOPBACK = "http://127.0.0.1:9/"


def _relative(value: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", value).strip(".") or "x"
    return "contract-files/" + name[:64]


def _confine(value):
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if isinstance(item, str) and key in ("path", "offset_file"):
                out[key] = _relative(item)
            elif isinstance(item, str) and key == "url":
                out[key] = CLOSED_LOOPBACK
            elif isinstance(item, str) and key == "bind":
                out[key] = "127.0.0.1:0"
            else:
                out[key] = _confine(item)
        return out
    if isinstance(value, list):
        return [_confine(item) for item in value]
    return value


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.operation.path == "/api/v1/jobs" and case.method.upper() == "POST":
        if isinstance(case.body, (dict, list)):
            case.body = _confine(case.body)
