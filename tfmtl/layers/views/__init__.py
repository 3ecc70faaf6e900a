"""Views: the stage between the embeddings and a switcher that gives each
task (or the shared part) its own input (see `tfmtl.layers.Switcher`)."""

from tfmtl.layers.views.field_view import FieldView
from tfmtl.layers.views.task_embeddings import TaskEmbeddings
