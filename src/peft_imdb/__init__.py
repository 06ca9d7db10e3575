"""peft_imdb: Full fine-tuning, LoRA, QLoRA (4-bit NF4), IA3 and more PEFT methods on IMDb, measured."""

import logging

import warnings

# bitsandbytes warns at import that an optional hub kernel is missing; it falls back by itself.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
# peft 0.21's get_peft_model reads `is_gradient_checkpointing`, which transformers 5 deprecated: the call
# is peft's, not ours, so only that one notice is silenced (it reappears for any other caller).
warnings.filterwarnings("ignore", message=r".*`is_gradient_checkpointing` is deprecated", category=FutureWarning,
                        module=r"transformers\.modeling_utils")
# datasets' sort (the length-sorted evaluation set) calls a pyarrow option that pyarrow 25 deprecated:
# the call is datasets', not ours, so only that notice is silenced.
warnings.filterwarnings("ignore", message="Specifying null_placement in SortOptions is deprecated",
                        category=FutureWarning)

from .config import PROFILES, RunConfig, detect_profile
from .errors import Unsupported, UserError
from .methods import METHODS, Method, get_method, register

__version__ = "0.1.0"
__all__ = ["METHODS", "Method", "get_method", "register", "PROFILES", "RunConfig", "detect_profile", "UserError", "Unsupported", "__version__"]
