"""The Lambda inference image without Docker (see the modules)."""
