"""imdb-cli: fine-tune transformer encoders for text classification from layered YAML configs."""

__version__ = "0.1.0"
