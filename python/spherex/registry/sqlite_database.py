"""daf_butler's SQLite registry database, able to open a repository read-only after a crash."""

from __future__ import annotations

__all__ = ["HotJournalError", "SPHERExSqliteDatabase", "roll_back_hot_journal"]

import os
import sqlite3
import urllib.parse

import sqlalchemy
from lsst.daf.butler.registry.databases.sqlite import SqliteDatabase


class HotJournalError(OSError):
    """An interrupted write left a journal to roll back, and this process cannot write the database."""


def roll_back_hot_journal(path: str) -> bool:
    """Roll back what a killed writer left in ``<path>-journal``, as SQLite does on a writable open.

    Parameters
    ----------
    path : `str`
        SQLite database file.

    Returns
    -------
    rolled_back : `bool`
        `True` if a journal was there and is now gone (rolled back, or found not to be hot).

    Raises
    ------
    HotJournalError
        Raised, in one line naming the journal and what to do, if the journal must be rolled back and
        this process may not write the database.

    Notes
    -----
    A process killed in the middle of a write transaction leaves a "hot" journal beside the database:
    the pages it holds must be written back before anyone may read.  SQLite does that on the first read
    by a connection that may write; a read-only connection (``mode=ro``, as daf_butler opens a Butler
    made with ``writeable=False``) cannot, and fails with "attempt to write a readonly database".
    Rolling back restores the last committed state; nothing committed is lost.  A journal whose
    writer is still running is not hot, and SQLite leaves it alone.
    """
    journal = f"{path}-journal"
    try:
        if os.path.getsize(journal) == 0:
            return False
    except OSError:
        return False
    try:
        connection = sqlite3.connect(f"file:{urllib.parse.quote(path)}?mode=rw", uri=True, timeout=60)
        try:
            # Any read makes SQLite roll back a hot journal.
            connection.execute("PRAGMA schema_version").fetchone()
        finally:
            connection.close()
    except sqlite3.Error as err:
        raise HotJournalError(
            f"{path}: a write was interrupted (a process was killed) and its journal {journal} must be "
            f"rolled back before the repository can be read, which this user cannot do ({err}); run any "
            "command that writes to the repository (an ingest, 'butler register-instrument ...') as a user "
            "who may write it"
        ) from None
    return not os.path.exists(journal)


class SPHERExSqliteDatabase(SqliteDatabase):
    """`~lsst.daf.butler.registry.databases.sqlite.SqliteDatabase` that recovers a crashed write first.

    Opening a repository read-only (``Butler(repo)``, ``butler query-datasets``) after an ingest was
    killed mid-transaction fails in daf_butler with "attempt to write a readonly database" until some
    writable open rolls the journal back; this class rolls it back first (`roll_back_hot_journal`), or
    says in one line why it cannot.
    """

    @classmethod
    def makeEngine(
        cls,
        uri: str | sqlalchemy.engine.URL | None = None,
        *,
        filename: str | None = None,
        writeable: bool = True,
    ) -> sqlalchemy.engine.Engine:
        """Create the engine as daf_butler does, after rolling back a hot journal for a read-only open.

        Parameters
        ----------
        uri : `str` or `sqlalchemy.engine.URL`, optional
            SQLAlchemy URI.
        filename : `str`, optional
            Database file, if ``uri`` is `None`.
        writeable : `bool`, optional
            Whether the engine may write.

        Returns
        -------
        engine : `sqlalchemy.engine.Engine`
            The engine.
        """
        if not writeable:
            path = filename
            if uri is not None:
                text = uri.render_as_string(hide_password=False) if not isinstance(uri, str) else uri
                parsed = urllib.parse.urlparse(text)
                path = parsed.path[1:] if parsed.path.startswith("/") else None
            if path:
                roll_back_hot_journal(path)
        return super().makeEngine(uri, filename=filename, writeable=writeable)
