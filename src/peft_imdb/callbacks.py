"""Trainer callbacks that registry entries ask for (methods.Method.callbacks): AdaLoRA's rank budget."""

from __future__ import annotations

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
