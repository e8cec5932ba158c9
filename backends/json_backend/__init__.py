"""The ``json`` backend: one JSON file per tribute, atomic writes, cross-process locks."""
