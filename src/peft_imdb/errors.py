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


class Stopped(KeyboardInterrupt):
    """A stop asked for by a signal, SIGINT (Ctrl-C) or SIGTERM (Colab, Slurm, docker stop): the command ends with
    exit code 128 + the signal's number, naming the run it stopped (`run`) and how that run goes on (`resume`)."""

    def __init__(self, signum: int = 2, run: str = "", resume: str = ""):
        super().__init__(signum)
        self.signum, self.run, self.resume = signum, run, resume

    def __reduce__(self):  # sent back by a run process through its pipe
        return type(self), (self.signum, self.run, self.resume)

    @property
    def exit_code(self) -> int:
        """128 + the signal's number: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + self.signum

    @property
    def signal_name(self) -> str:
        """SIGINT, SIGTERM, ..."""
        import signal

        return signal.Signals(self.signum).name
