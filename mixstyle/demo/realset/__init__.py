"""The real set: songs made by real people, shipped in Debian, as mixstyle sessions.

Tracker modules from game-data packages (rendered per instrument with libopenmpt) and
Hydrogen's demo songs (rendered per instrument with h2cli): each track alone and dry (its mix
fields reset) as the stems, the author's own mix as the mix. ``build_realset`` writes
``OUT/<song>/stems/*.wav``, ``mix.wav`` and ``source.json``. Imports ``sessions``/``io`` only.
"""
