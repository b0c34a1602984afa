"""The HTTP API: thin FastAPI routes, camelCase VCF schemas, and the one mapping of errors to VCF bodies."""
