"""New stems -> the profile's console setting -> the mix, at the session's own sample rate.

What ``mixstyle mix``, ``mixstyle export`` and ``mixstyle host --render`` share, so that they
agree: the stems load at the first stem's own rate (or the rate asked for; stems at other rates
are resampled to it with the loader's warning), the profile predicts a setting for them (its
features are measured at the fixed analysis rate, see ``Profile.predict``), and the console
renders at the session's rate, so a 48 or 96 kHz session comes back at 48 or 96 kHz.

``fixed_gain`` turns a setting with a loudness target into the one a real-time engine plays to
sound the same: the master gain and limiter ceiling the offline render chose, and no target (the engine cannot
measure a whole song before it starts). ``resolved_gain`` is the same with the target kept, for
an export: a DAW plays the gain, the file still says what it was set for.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from dsp.params import ConsoleSetting
from dsp.render import RenderResult, render
from mixstyle.sessions.check import Issue
from mixstyle.sessions.load import Stem, load_stem_set


@dataclass(frozen=True)
class Prediction:
    """New stems at ``sample_rate_hz`` and the console setting predicted for them."""

    stems: tuple[Stem, ...]
    sample_rate_hz: float
    setting: ConsoleSetting

    @property
    def inputs(self) -> list[Path]:
        """The stems' files (no output may overwrite one)."""
        return [s.path for s in self.stems]

    def render(self) -> RenderResult:
        """The mix at ``sample_rate_hz`` (loudness target applied), same length as the stems."""
        return render(np.stack([s.audio for s in self.stems]), self.sample_rate_hz, self.setting)


def predict_stems(profile: Any, stems_dir: str | Path, sample_rate_hz: float | None = None,
                  strength: float = 1.0,
                  on_warning: Callable[[Issue], None] | None = None) -> Prediction:
    """Load ``stems_dir`` (at ``sample_rate_hz``, default: the first stem's own rate) and ask
    ``profile`` (a ``mixstyle.profile.predict.Profile``) for their setting."""
    loaded = load_stem_set(stems_dir, sample_rate_hz, on_warning=on_warning)
    setting = profile.predict([(s.name, s.role, s.audio) for s in loaded.stems],
                              loaded.sample_rate, strength)
    return Prediction(loaded.stems, loaded.sample_rate, setting)


def fixed_gain(setting: ConsoleSetting, result: RenderResult) -> ConsoleSetting:
    """``setting`` with its loudness target resolved as the offline render ``result`` resolved
    it: its master gain, the limiter ceiling it ran at (lowered where the true peak needed it)
    and ``target_lufs`` None."""
    return replace(setting, master=dict(setting.master, gain_db=float(result.master_gain_db),
                                        limiter_ceiling_db=float(result.limiter_ceiling_db),
                                        target_lufs=None))


def resolved_gain(setting: ConsoleSetting, result: RenderResult) -> ConsoleSetting:
    """``fixed_gain`` with the loudness target kept (the master gain and ceiling the render
    ``result`` chose, and the target they were chosen for)."""
    fixed = fixed_gain(setting, result)
    return replace(fixed, master=dict(fixed.master, target_lufs=setting.master.get("target_lufs")))
