"""The backup archive format: streaming writer and reader."""
