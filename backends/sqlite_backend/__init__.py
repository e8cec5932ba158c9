"""The SQL backend: ``sqlite`` and ``postgresql`` on SQLAlchemy Core, one class, two dialects."""
