"""Demo data: generated multitrack songs (MMA + fluidsynth) and demo producers that mix them.

``make_song`` writes one song's dry stems; ``PRODUCERS`` are the demo engineers with different
tastes (never mixstyle's console): ava, ben and cleo (pedalboard effects, peak-normalised mixes)
and dex, zed and rio, who print bus effects into their mixes (a limiter; zam-plugins; sends);
``make_sessions`` writes a producer's sessions (stems + mix + master) in the layout
``mixstyle.sessions.load`` reads.
"""

from mixstyle.demo.producers import MixResult, Producer, RoleTaste
from mixstyle.demo.roster import PRODUCERS
from mixstyle.demo.sessions import DECISIONS_FILE, make_sessions, mix_session, song_names
from mixstyle.demo.songs import DemoToolError, check_tools, make_song, tools_missing
from mixstyle.demo.styles import STEM_ROLES, STYLES

__all__ = ["DECISIONS_FILE", "DemoToolError", "MixResult", "PRODUCERS", "Producer", "RoleTaste",
           "STEM_ROLES", "STYLES", "check_tools", "make_sessions", "make_song", "mix_session",
           "song_names", "tools_missing"]
