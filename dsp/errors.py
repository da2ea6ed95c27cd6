"""The one error tree of mixstyle.

It lives in ``dsp`` because ``dsp`` is the bottom of the dependency graph: ``mixstyle`` and
``host`` import it from here (``mixstyle.errors`` re-exports it). Every message names the file or
parameter at fault and says what was expected.
"""

from __future__ import annotations


class MixstyleError(Exception):
    """Base class of every error mixstyle raises on purpose."""


class ParameterError(MixstyleError, ValueError):
    """A parameter is unknown, out of range or not a finite number."""


class AudioInputError(MixstyleError, ValueError):
    """Audio has the wrong type, shape, sample rate or contains NaN/inf."""


class SessionError(MixstyleError):
    """A song folder of the producer's sessions cannot be used."""


class ProfileError(MixstyleError):
    """A profile folder is missing, incomplete or from an incompatible version."""


class ExportError(MixstyleError):
    """An export or import (DAWproject, preset, MIDI) cannot be done safely."""


class HostError(MixstyleError):
    """The real-time host cannot start or was given an unusable setting."""
