"""What a UI script run under Xvfb printed: its ``RESULT {json}`` lines, merged into one dict."""

import json


def results_of(log):
    """{name: value} from every ``RESULT {json}`` line of ``log`` (a later line overrides an earlier one)."""
    results = {}
    for line in log.splitlines():
        if line.startswith("RESULT "):
            results.update(json.loads(line[len("RESULT "):]))
    return results


LOG_MARKERS = ("Traceback", "Error:", "rna_uiItem", "Segmentation fault", "Dependency cycle")


def checked_walk(log):
    """What a UI walk (tutorial_ui.py, stylegan_ui.py) printed, after checking it went clean: no marker of
    `LOG_MARKERS` in Blender's log, a REPORTS line with no traceback or error among the reports the UI
    showed, no "error" result. Returns {name: value} of its RESULT lines, plus "CUT_LABELS" and "REPORTS"."""
    for marker in LOG_MARKERS:
        assert marker not in log, log[-6000:]
    found = {}
    for line in log.splitlines():
        for prefix in ("RESULT ", "CUT_LABELS ", "REPORTS "):
            if line.startswith(prefix):
                # raw_decode: Blender's render progress ("Time: 00:00.00 ...") may follow on the same line
                value, _ = json.JSONDecoder().raw_decode(line[len(prefix):])
                found.update(value if prefix == "RESULT " else {prefix.strip(): value})
    assert "REPORTS" in found and "error" not in found, log[-6000:]
    assert "Traceback" not in found["REPORTS"] and "Error" not in found["REPORTS"], found["REPORTS"]
    return found
