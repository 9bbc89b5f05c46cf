"""``python -m keyguard``: the same entry point as the ``keyguard`` console script."""

from keyguard.cli import main

if __name__ == "__main__":
    main()
