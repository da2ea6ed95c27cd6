"""Demo data: generated multitrack songs (MMA + fluidsynth) and demo producers that mix them."""

from mixstyle.demo.songs import DemoToolError, check_tools, make_song
from mixstyle.demo.styles import STEM_ROLES, STYLES

__all__ = ["DemoToolError", "STEM_ROLES", "STYLES", "check_tools", "make_song"]
