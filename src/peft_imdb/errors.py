"""Errors that mean "the input is wrong": the CLI prints them as one line and exits 2."""


class UserError(Exception):
    """Bad input the user can fix; the message says how."""


class Unsupported(Exception):
    """This machine cannot run the requested method (the run is recorded as skipped)."""
