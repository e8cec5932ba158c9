"""The ``composite`` backend: primary store first, fallback second, for the migration window."""
