"""Subcommands: every public module here has `register(subparsers)`; the CLI finds them itself."""
