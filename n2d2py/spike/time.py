"""Simulated time: integer femtoseconds (spec §6.2), as N2D2's Time_T.

Every time in n2d2py.spike is an int64 count of femtoseconds. Each stimulus is presented
in its own window [0, WINDOW) after a reset of the network: N2D2 places stimulus i at
[i µs, (i+1) µs), which the reset makes equivalent.
"""

FS = 1
PS = 1_000 * FS
NS = 1_000 * PS
US = 1_000 * NS
MS = 1_000 * US
S = 1_000 * MS

WINDOW = US  # presentation window of one test stimulus
HOP = FS  # an output spike is an event one femtosecond after the input that caused it
TERMINATE_AFTER = 2 * FS  # TerminateDelta/Max: the stimulus stops this long after the deciding spike


def to_fs(value):
    """A time in femtoseconds (INI values are femtoseconds) as an int, rounded."""
    return int(round(float(value)))
