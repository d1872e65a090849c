# Test data for jmod.port (tests/port/test_port_models.py): ported as it is, never edited by hand.
# Source: https://github.com/pytorch/examples mnist/main.py at commit 77f55b912142e11fcfdf5b530231fb9c52f181e8
# Licence: BSD-3-Clause, Copyright (c) 2017, Pytorch contributors (pytorch/examples LICENSE)
# Trimmed to the model: the Net class and the torch imports it uses.

import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super(Net, self).__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = F.relu(x)
        x = self.conv2(x)
        x = F.relu(x)
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.dropout2(x)
        x = self.fc2(x)
        output = F.log_softmax(x, dim=1)
        return output
