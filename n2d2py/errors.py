"""The one user-error type, and warnings that carry the same location."""

import difflib
import sys


def did_you_mean(word, choices, template="'{}'", cutoff=0.6):
    """``"; did you mean 'x'?"`` for the choice closest to ``word``, or "" when none is close;
    ``template`` formats the suggestion (e.g. ``"{}"`` for options, ``"[sec]{}"`` for keys)."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=cutoff)
    return f"; did you mean {template.format(close[0])}?" if close else ""


class N2D2PyError(Exception):
    """A mistake in the user's input: INI text, data files, weights, options.

    Printed by the CLI as one line ``file:line: [section] Key: message``; every part but the
    message is optional.
    """

    def __init__(self, message, file=None, line=None, section=None, key=None):
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.section = section
        self.key = key

    def __str__(self):
        return format_location(self.file, self.line, self.section, self.key) + self.message


def format_location(file=None, line=None, section=None, key=None):
    """``file:line: [section] Key: `` with the missing parts left out."""
    parts = ""
    if file:
        parts += f"{file}:{line}: " if line else f"{file}: "
    if section is not None:
        parts += f"[{section}] "
    if key:
        parts += f"{key}: "
    return parts


class Diagnostics:
    """Collects warnings; in strict mode unused keys are raised as errors instead."""

    def __init__(self, strict=False, stream=None):
        self.strict = strict
        self.stream = stream
        self.messages = []

    def unused(self, message, file=None, line=None, section=None, key=None):
        """An unread or unknown key or section: a warning, or an error in strict mode."""
        if self.strict:
            raise N2D2PyError(message, file, line, section, key)
        self.warn(message, file, line, section, key)

    def warn(self, message, file=None, line=None, section=None, key=None):
        text = "warning: " + format_location(file, line, section, key) + message
        self.messages.append(text)
        print(text, file=self.stream or sys.stderr)
