"""Subcommands of the `preproc` command line, one module each (see preproc.cli)."""
