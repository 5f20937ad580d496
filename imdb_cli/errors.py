"""The one exception type for mistakes a user can fix: the command line prints it as a single line."""


class UserError(Exception):
    """Bad input a user can correct (a missing file, an unreachable model, an empty predict file).

    ``imdb`` prints the message on stderr and exits with status 1, without a traceback.
    """
