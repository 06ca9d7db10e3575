"""peft_imdb: Full fine-tuning, LoRA, QLoRA (4-bit NF4) and IA3 on IMDb, measured."""

from .compat import silence_bitsandbytes_import_warning

# Before anything imports bitsandbytes: on CPU it logs a warning at import (0.46-0.47: "compiled
# without GPU support"; 0.48+: an optional hub kernel is missing). It falls back by itself, and the
# warning would otherwise reach stderr through transformers -> peft (see compat.py).
silence_bitsandbytes_import_warning()

from .config import METHODS, PROFILES, RunConfig, detect_profile
from .errors import Unsupported, UserError

__version__ = "0.1.0"
__all__ = ["METHODS", "PROFILES", "RunConfig", "detect_profile", "UserError", "Unsupported", "__version__"]
