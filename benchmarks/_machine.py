"""Where a benchmark ran: the package's machine record plus torch's thread count."""

from __future__ import annotations

from typing import Any

import torch

from sparse_rl.machine import machine_info as _machine_info


def machine_info() -> dict[str, Any]:
    return {**_machine_info(), "torch_threads": torch.get_num_threads()}
