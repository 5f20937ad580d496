"""``python -m imdb_cli`` runs the same command line as ``imdb``."""

from imdb_cli.cli import main

if __name__ == "__main__":
    main()
