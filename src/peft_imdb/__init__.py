"""peft_imdb: Full fine-tuning, LoRA, QLoRA (4-bit NF4) and IA3 on IMDb, measured."""

import logging

# bitsandbytes warns at import that an optional hub kernel is missing; it falls back by itself.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)

from .config import METHODS, PROFILES, RunConfig, detect_profile
from .errors import Unsupported, UserError

__version__ = "0.1.0"
__all__ = ["METHODS", "PROFILES", "RunConfig", "detect_profile", "UserError", "Unsupported", "__version__"]
