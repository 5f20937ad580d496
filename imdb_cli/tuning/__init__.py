"""Searching for settings: ``imdb sweep`` (Optuna studies of many fits, k-fold cross-validation),
its sweep file, one trial's fit, and ``imdb lr_find`` (Lightning's learning-rate finder)."""
