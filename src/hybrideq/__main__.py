"""``python -m hybrideq``: the ``hybrideq`` command (see :mod:`hybrideq.cli`)."""

from hybrideq.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
