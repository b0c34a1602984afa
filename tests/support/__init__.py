"""Real components for tests: the server as a process, a PostgreSQL cluster, an HTTP client."""
