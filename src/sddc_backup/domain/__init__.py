"""The pure core: value objects, rules and errors. Standard library only, no I/O."""
