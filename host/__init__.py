"""The real-time host: stems playback through the console, MIDI control, VST3 inserts."""
