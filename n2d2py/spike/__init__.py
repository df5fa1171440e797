"""Spike simulation of Transcode models (spec §6): coding, neurons, layers, transcoding,
the event engines, statistics. Importing it registers STIMULI and TRANSCODERS."""

from n2d2py.spike import coding, transcode  # noqa: F401
