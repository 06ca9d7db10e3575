"""peft_imdb: Full fine-tuning, LoRA, QLoRA (4-bit NF4), IA3 and more PEFT methods on IMDb, measured."""

from .compat import silence_bitsandbytes_import_warning, silence_offline_hub_chatter

# Before anything imports bitsandbytes: on CPU it logs a warning at import (0.46-0.47: "compiled
# without GPU support"; 0.48+: an optional hub kernel is missing). It falls back by itself, and the
# warning would otherwise reach stderr through transformers -> peft (see compat.py). Offline, the
# `kernels` package it asks adds a notice that it skips a hub check; that one is dropped too.
silence_bitsandbytes_import_warning()
silence_offline_hub_chatter()

import warnings  # noqa: E402

# peft 0.21's get_peft_model reads `is_gradient_checkpointing`, which transformers 5 deprecated: the call
# is peft's, not ours, so only that one notice is silenced (it reappears for any other caller).
warnings.filterwarnings("ignore", message=r".*`is_gradient_checkpointing` is deprecated", category=FutureWarning,
                        module=r"transformers\.modeling_utils")
# datasets' sort (the length-sorted evaluation set) calls a pyarrow option that pyarrow 25 deprecated:
# the call is datasets', not ours, so only that notice is silenced.
warnings.filterwarnings("ignore", message="Specifying null_placement in SortOptions is deprecated",
                        category=FutureWarning)

from .config import PROFILES, RunConfig, detect_profile  # noqa: E402
from .errors import Unsupported, UserError  # noqa: E402
from .methods import METHODS, Method, get_method, register  # noqa: E402

__version__ = "0.1.0"
__all__ = ["METHODS", "Method", "get_method", "register", "PROFILES", "RunConfig", "detect_profile", "UserError", "Unsupported", "__version__"]
