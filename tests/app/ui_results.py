"""What a UI script run under Xvfb printed: its ``RESULT {json}`` lines, merged into one dict."""

import json


def results_of(log):
    """{name: value} from every ``RESULT {json}`` line of ``log`` (a later line overrides an earlier one)."""
    results = {}
    for line in log.splitlines():
        if line.startswith("RESULT "):
            results.update(json.loads(line[len("RESULT "):]))
    return results
