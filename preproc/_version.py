"""The package version, in the one place the build and the reports read it."""

__version__ = "0.1.0"
