"""Drop-in adapters that let existing bots keep their storage API on any tributestore store.

- :mod:`tributestore.compat.thgbot`: THGBot's ``SQLDatabase`` and ``StorageManager``.
"""
