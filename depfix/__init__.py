"""depfix: find and fix FastAPI dependency-injection mistakes across a whole repository."""

__version__ = "0.1.0"
