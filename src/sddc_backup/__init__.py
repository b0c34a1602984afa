"""sddc-backup: encrypted, verifiable backup and restore behind the SDDC Manager backup API."""

__version__ = "0.1.0"
