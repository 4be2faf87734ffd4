"""pytester for the plugin's own tests (each run is a subprocess: its CAs and threads are its own)."""

pytest_plugins = ["pytester"]
