"""Backup locations (storage backends). Each backend is one module behind one small Protocol."""
