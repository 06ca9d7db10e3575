"""Errors that mean "the input is wrong": the CLI prints them as one line and exits 2."""


class UserError(Exception):
    """Bad input the user can fix; the message says how."""


class Unsupported(Exception):
    """This machine cannot run the requested method (the run is recorded as skipped)."""


def first_line(exc: BaseException) -> str:
    """An exception's message up to its first line break; its type's name when it has no message."""
    text = str(exc)
    return text.splitlines()[0] if text.strip() else type(exc).__name__


class Diverged(Exception):
    """Training produced a loss that is not finite: the run is stored as `failed` with the step."""

    def __init__(self, step: int, loss: float):
        super().__init__(f"diverged at step {step}: the training loss became {loss} (not finite); training stopped "
                         "there; a smaller --lr may train")
        self.step, self.loss = step, loss

