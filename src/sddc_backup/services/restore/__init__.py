"""Restores: the task, its swaps, its journal and the recovery after a crash."""
