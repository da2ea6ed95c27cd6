"""Every demo producer by name: ava, ben and cleo (producers.py) and those who print bus effects
into their mix -- dex (a limiter, printing.py), zed (zam-plugins, zam.py), rio (reverb and delay
sends, sends.py)."""

from __future__ import annotations

from mixstyle.demo.printing import DEX
from mixstyle.demo.producers import PRODUCERS as CLASSIC
from mixstyle.demo.producers import Producer
from mixstyle.demo.sends import RIO
from mixstyle.demo.zam import ZED

PRODUCERS: dict[str, Producer] = {**CLASSIC, DEX.name: DEX, ZED.name: ZED, RIO.name: RIO}
