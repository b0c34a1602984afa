"""The task engine: it owns task state; task bodies own the work and see only a ``TaskController``."""
