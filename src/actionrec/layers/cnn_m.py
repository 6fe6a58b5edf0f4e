"""CNN-M-2048, the image network of the two-stream paper.

Chatfield et al. 2014, "Return of the Devil in the Details: Delving Deep into Convolutional Nets"
(arXiv 1405.3531, Table 1, "CNN-M" with a 2048-wide full7), as used by Simonyan & Zisserman 2014,
"Two-Stream Convolutional Networks for Action Recognition in Videos" (arXiv 1406.2199, Fig. 1 and
§5): conv1 96x7x7/2 + LRN + 3x3/2 max-pool, conv2 256x5x5/2 + LRN + pool, conv3-5 512x3x3, pool5,
full6 4096 + dropout, full7 2048 + dropout, then the classifier. The temporal network of the
two-stream paper has no conv2 normalisation ("to reduce memory consumption", Fig. 1): ``lrn2=False``.

Layout details not given in the papers are the Caffe model zoo's ``VGG_CNN_M`` (from memory,
[unverified]): conv2 padding 1, conv3-5 padding 1, max-pools rounding up (``ceil_mode``), LRN over 5
channels with k = 2, alpha = 5e-4 (PyTorch divides alpha by the size, as Caffe does), beta = 0.75.
At 224 x 224 pool5 is 6 x 6 x 512; an adaptive average pool to 6 x 6 before full6 (as torchvision's
AlexNet does) lets the network run on smaller inputs and is the identity at 224.

Measured parameters (this module, ``count_params``): 90,420,864 without the classifier
(3-channel input), 90,627,813 with a 101-way classifier; the 20-channel temporal network has
79,968 more in conv1 (17 x 96 x 7 x 7).
"""

from __future__ import annotations

import torch
from torch import nn

NUM_FEATURES = 2048  # width of full7, what the classifier sees


def _lrn() -> nn.LocalResponseNorm:
    return nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)


class CNNM2048(nn.Module):
    """(N, C, H, W) -> (N, num_classes) logits; ``features`` ends at relu5 and ``pool5`` follows it.

    Parts, so that a fusion network can cut at relu5 (Feichtenhofer et al. 2016): ``features``
    (conv1 .. relu5), ``pool5`` (3x3/2 max), ``neck`` (6 x 6 adaptive average, flatten, full6, full7
    with ReLU and dropout) and ``fc`` (the classifier; identity when ``num_classes`` is 0).
    """

    def __init__(
        self, *, in_channels: int = 3, num_classes: int = 1000, dropout: float = 0.5, lrn2: bool = True
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 96, 7, stride=2),  # conv1
            nn.ReLU(inplace=True),
            _lrn(),
            nn.MaxPool2d(3, stride=2, ceil_mode=True),
            nn.Conv2d(96, 256, 5, stride=2, padding=1),  # conv2
            nn.ReLU(inplace=True),
            _lrn() if lrn2 else nn.Identity(),
            nn.MaxPool2d(3, stride=2, ceil_mode=True),
            nn.Conv2d(256, 512, 3, padding=1),  # conv3
            nn.ReLU(inplace=True),
            nn.Conv2d(512, 512, 3, padding=1),  # conv4
            nn.ReLU(inplace=True),
            nn.Conv2d(512, 512, 3, padding=1),  # conv5
            nn.ReLU(inplace=True),
        )
        self.pool5 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.neck = nn.Sequential(
            nn.AdaptiveAvgPool2d((6, 6)),
            nn.Flatten(1),
            nn.Linear(512 * 6 * 6, 4096),  # full6
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, NUM_FEATURES),  # full7
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
        )
        self.num_features = NUM_FEATURES
        self.fc: nn.Module = nn.Linear(NUM_FEATURES, num_classes) if num_classes > 0 else nn.Identity()
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.neck(self.pool5(self.features(x))))  # (N, C, 224, 224) -> (N, K)
