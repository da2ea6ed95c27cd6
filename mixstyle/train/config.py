"""``LearnConfig``: the settings of a whole learning run -- the per-song fit, the training, how
much of each song is used, the share of songs kept out for the held-out score, and how many
processes fit. ``learn`` and ``evaluate``'s leave-one-out both run with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from dsp.validate import check_range
from mixstyle.errors import ProfileError
from mixstyle.fit.song import FitConfig
from mixstyle.train.loop import TrainConfig


@dataclass(frozen=True)
class LearnConfig:
    fit: FitConfig = FitConfig()
    train: TrainConfig = TrainConfig()
    max_seconds: float = 30.0      # of each song used (loudest region)
    holdout_fraction: float = 0.2  # songs kept out for the held-out score (min 1 when >= 4 songs)
    jobs: int = 0                  # processes for the per-song fits (0 = one per core)

    def __post_init__(self) -> None:
        if isinstance(self.jobs, bool) or not isinstance(self.jobs, int) or self.jobs < 0:
            raise ProfileError(f"LearnConfig.jobs = {self.jobs!r}: must be an integer >= 0 "
                               f"(0 = one process per core)")
        check_range("LearnConfig.max_seconds", self.max_seconds, 0.1, 86400.0, "s")
