"""Use cases: authentication, users, the backup configuration, readiness."""
