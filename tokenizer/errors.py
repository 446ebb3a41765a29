class LSRecError(Exception):
    """A problem with the user's input or setup. The CLI prints it as one line and exits 1."""
