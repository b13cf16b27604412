"""The one exception type a user sees.

Every ``LatentWalkError`` message says what was wrong, with which file or field,
and what to do about it. The add-on shows it in the status bar; the CLI prints it
on stderr and exits with status 2. Anything else escaping is a bug.
"""


class LatentWalkError(Exception):
    """A problem the user can fix; ``str(error)`` is the whole message."""
