"""Model classes."""

from tfmtl.models.multi_task_model import MultiTaskModel, default_losses, default_metrics
