"""Trainer callbacks: the one every run has (stopping when the loss stops being finite), and those registry entries
ask for (methods.Method.callbacks): AdaLoRA's rank budget."""

from __future__ import annotations

import math

from transformers import TrainerCallback

from .errors import Unsupported


class AdaLoraBudget(TrainerCallback):
    """Calls AdaLoRA's `update_and_allocate(global_step)` after every optimizer step, before the gradients are
    zeroed: peft's contract (the sensitivity of each singular value is read from its gradient).

    The Trainer calls `on_optimizer_step` right after `optimizer.step()` and before `model.zero_grad()`;
    `state.global_step` then counts the steps before this one (0 for the first), as peft's loop example does.
    """

    def __init__(self, total_step: int):
        self.total_step = total_step

    def __repr__(self) -> str:
        return f"AdaLoraBudget(total_step={self.total_step})"

    def on_train_begin(self, args, state, control, **kwargs):
        # The schedule was derived from the run's config (methods.optimizer_steps); a Trainer that plans other
        # steps (several processes, a data folder of another size) would end the budget phase at the wrong step.
        if state.max_steps != self.total_step:
            raise Unsupported(f"AdaLoRA's schedule was derived for {self.total_step} optimizer steps but the Trainer "
                              f"runs {state.max_steps} (several processes, or a train split of another size)")

    def on_optimizer_step(self, args, state, control, model=None, **kwargs):
        model.base_model.update_and_allocate(state.global_step)


class StopWhenDiverged(TrainerCallback):
    """Stops training after the first optimizer step whose training loss is not finite (nan or inf) and keeps the
    step; nothing is saved or evaluated after it (train.py then stores the run as `failed`).

    The loss is read where the model returns it (a forward hook, training forwards only): the Trainer's logs
    replace a non-finite loss by the running mean (`logging_nan_inf_filter`), so they never show it.
    """

    def __init__(self):
        self.step: int | None = None  # the optimizer step (1-based) whose loss was not finite
        self.loss: float | None = None
        self._hook = None

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self._hook = model.register_forward_hook(self._read_loss)

    def _read_loss(self, module, inputs, output) -> None:
        loss = output.get("loss") if module.training and isinstance(output, dict) else None
        if loss is not None and self.loss is None and not math.isfinite(float(loss.detach().float().sum())):
            self.loss = float(loss.detach().float().sum())

    def on_step_end(self, args, state, control, **kwargs):
        if self.loss is not None and self.step is None:
            self.step = state.global_step
        if self.step is not None:
            control.should_training_stop = True
            control.should_save = control.should_evaluate = False

    def on_epoch_end(self, args, state, control, **kwargs):
        if self.step is not None:
            control.should_save = control.should_evaluate = False

    def on_train_end(self, args, state, control, **kwargs):
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
