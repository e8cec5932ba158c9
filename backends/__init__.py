"""Built-in backends; each one is an ordinary plugin (see its ``plugin`` module)."""
