"""Model families, one module each; importing this package registers every model."""

from actionrec.models import (  # noqa: F401
    c3d,
    conv_fusion,
    dynamonet,
    i3d,
    karpathy,
    resnet3d,
    resnet_nonlocal,
    single_frame,
    slowfast,
    snippets,
    strg,
    tada,
    timesformer,
    tsn,
    two_stream,
)
from actionrec.models.registry import (
    ModelCard,
    create_model,
    example_input,
    get_card,
    list_models,
    register_model,
)

__all__ = ["ModelCard", "create_model", "example_input", "get_card", "list_models", "register_model"]
