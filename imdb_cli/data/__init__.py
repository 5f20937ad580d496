"""Data: sources, tokenization, batching, and the DataModule that ties them together."""

from imdb_cli.data.datamodule import IMDBDataModule

__all__ = ["IMDBDataModule"]
