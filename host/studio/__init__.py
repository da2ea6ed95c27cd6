"""mixstyle studio: a web mixer on the live host (engine process + web process, see PROTOCOL.md)."""
