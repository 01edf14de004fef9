"""optbuild: declarative, config-driven builds of optimized inference artifacts."""

__version__ = "0.1.0"
