"""The ``sqlite`` backend: relational tables on ``dataset``/SQLAlchemy, WAL, real transactions."""
