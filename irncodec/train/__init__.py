"""Training IRN on a folder of photos: ``irncodec train CONFIG.yaml``.

One module per concern: :mod:`.config` (the YAML settings), :mod:`.losses`
(the loss terms and their weights), :mod:`.trainer` (the run: optimisation,
validation, exact checkpoints), :mod:`.distributed` (data-parallel training
under torchrun), :mod:`.evaluation` (PSNR, through a real LR codec when asked)
and :mod:`.release` (exporting weights and shipping them in the zoo).
"""

from .config import PRECISIONS, RENAMED_KEYS, TrainConfig, renamed_keys, resolve_data_paths
from .distributed import distributed_context, init_distributed
from .evaluation import evaluate, load_eval_images
from .losses import WEIGHTS, bicubic_downscale, irn_losses, loss_terms, quantize_ste, weighted_total
from .release import RELEASE_QUALITIES, export_checkpoint, release, training_record
from .trainer import Trainer, load_compatible, start_run, train

__all__ = ["PRECISIONS", "RELEASE_QUALITIES", "RENAMED_KEYS", "WEIGHTS", "TrainConfig", "Trainer", "bicubic_downscale",
           "distributed_context", "evaluate", "export_checkpoint", "init_distributed", "irn_losses",
           "load_compatible", "load_eval_images", "loss_terms", "quantize_ste", "release", "renamed_keys",
           "resolve_data_paths", "start_run", "train", "training_record", "weighted_total"]
