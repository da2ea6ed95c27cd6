"""Re-export of the one error tree (defined in dsp.errors, the bottom of the dependency graph)."""

from dsp.errors import (AudioInputError, ExportError, HostError, MixstyleError, ParameterError,
                        ProfileError, SessionError)

__all__ = ["AudioInputError", "ExportError", "HostError", "MixstyleError", "ParameterError",
           "ProfileError", "SessionError"]
