"""The ``sddc-backup`` command line (typer + rich). Local commands get their services from ``app``."""
