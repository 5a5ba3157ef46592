"""``python -m recs``: the command line, as the installed ``recs`` script runs it (``recs.cli.main``)."""

from __future__ import annotations

from recs.cli.main import main

if __name__ == "__main__":
    main()
