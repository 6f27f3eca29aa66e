"""Greenlight core: errors, settings, local stores and the CLI composition root."""

__version__ = "0.1.0"
__all__ = ["__version__"]
