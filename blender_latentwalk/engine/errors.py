"""The one exception type a user sees.

Every ``LatentWalkError`` message says what was wrong, with which file or field,
and what to do about it. The add-on shows it in the status bar; the CLI prints it
on stderr and exits with status 2. Anything else escaping is a bug.
"""


# What to do when the engine's Python lacks a package: every such message ends with it.
GET_THE_RENDER_STACK = (
    "In Blender press Preferences > Add-ons > Latent Walk > Set Up Render Environment, or set Engine Python "
    "(headless: --engine-python PATH, or the LATENTWALK_ENGINE_PYTHON environment variable) to a Python that "
    "has the render stack (in a developer checkout: .venv/bin/python, made by scripts/setup.sh).")


class LatentWalkError(Exception):
    """A problem the user can fix; ``str(error)`` is the whole message."""


# ---------------------------------------------------------------- what failed, in words a user reads first

# A report longer than this does not fit one line of the report popup of a 1280-pixel-wide window
# (Blender cuts it at the window's edge): the detail goes to the console, or behind a button.
REPORT_LIMIT_CHARS = 150

# What tools print when a host cannot be reached (pip's urllib3, requests, httpx, the OS), and the
# words a message uses for it. The first match wins: name resolution before the generic words.
_NETWORK_REASONS = (
    ("its name does not resolve", ("Temporary failure in name resolution", "Name or service not known",
                                   "nodename nor servname", "No address associated with hostname",
                                   "getaddrinfo failed", "NameResolutionError", "Could not resolve host",
                                   "[Errno -2]", "[Errno -3]", "[Errno 11001]", "gaierror")),
    ("connection refused", ("Connection refused", "[Errno 111]", "[Errno 61]", "[WinError 10061]")),
    ("timed out", ("timed out", "ConnectTimeout", "ReadTimeout", "TimeoutException", "[Errno 110]")),
    ("no route to it", ("Network is unreachable", "No route to host", "[Errno 101]", "[Errno 113]")),
    ("the proxy failed", ("ProxyError", "Cannot connect to proxy")),
    ("connection dropped", ("Connection reset", "Connection aborted", "RemoteDisconnected",
                            "IncompleteRead")),
    ("no connection", ("Failed to establish a new connection", "NewConnectionError", "Max retries exceeded",
                       "ConnectError", "ConnectionError", "NetworkError")),
)
_DISK_FULL = ("No space left on device", "[Errno 28]", "Disk quota exceeded", "[Errno 122]", "ENOSPC",
              "[WinError 112]")


def network_reason(text):
    """Why ``text`` (a tool's output, an exception's description) says a host could not be reached, in a
    few words ("connection refused", "its name does not resolve", ...); "" when it does not say so."""
    for words, markers in _NETWORK_REASONS:
        if any(marker in text for marker in markers):
            return words
    return ""


def says_disk_full(text):
    """True when ``text`` says the disk (or the user's quota) is full."""
    return any(marker in text for marker in _DISK_FULL)


def describe_exception(error):
    """One text with every exception of ``error``'s chain (causes and contexts): its class names (a
    ConnectError of httpx says "network" only by its class) and messages, for `network_reason`."""
    parts, seen = [], set()
    while error is not None and id(error) not in seen and len(parts) < 8:
        seen.add(id(error))
        names = "/".join(cls.__name__ for cls in type(error).__mro__ if cls not in (object, BaseException))
        parts.append(f"{names}: {error}")
        error = error.__cause__ or error.__context__
    return " <- ".join(parts)


LONG_NAME_KEEP_CHARS = 10  # of a long name's start and of its end, when a report must shorten it


def fit_report(message, limit=REPORT_LIMIT_CHARS):
    """``message`` in at most ``limit`` characters: its parentheses left out, the last first (the detail a
    message gives there: why, what is kept), then the middle of its longest names and paths, then cut at a
    word with "..." if it is still too long. The beginning says what failed and a message's end says what
    to do, so both stay where they can. The whole message belongs in the console (or behind a button)
    when this differs from it."""
    message = " ".join(message.split())
    while len(message) > limit:
        start = message.rfind(" (")
        end = message.find(")", start)
        if start < 0 or end < 0:
            break
        message = message[:start] + message[end + 1:]
    while len(message) > limit:  # then a long name or path loses its middle, so the advice at the end stays
        longest = max(message.split(" "), key=len)
        if len(longest) <= 2 * LONG_NAME_KEEP_CHARS + 3:
            break
        shorter = longest[:LONG_NAME_KEEP_CHARS] + "..." + longest[-LONG_NAME_KEEP_CHARS:]
        message = message.replace(longest, shorter, 1)
    if len(message) <= limit:
        return message
    return message[:limit - 3].rsplit(" ", 1)[0].rstrip(",;:") + "..."
