"""Alembic migrations of the result store.

This folder is a package only so that ``env.py`` ships in the wheel beside the package data
(``*.ini``, ``*.mako``, ``versions/*.py``). ``Store.migrate()`` runs it programmatically; see
``alembic.ini`` for writing a new revision.
"""
