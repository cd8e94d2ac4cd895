"""Run exported policies on a robot with numpy + onnxruntime only (no torch, no SB3).

An export directory holds ``policy.onnx`` (and, for MLPs, ``policy_mlp.npz``) beside
``card.json``, the policy card. ``Policy`` loads and checks them and turns observations into
commands; ``ControlLoop`` drives a ``RobotInterface`` at a fixed rate under a watchdog;
``GymRobot`` stands in for the robot in simulation. ``python -m sparse_rl.runtime --help``.

Nothing here imports torch, stable-baselines3 or the rest of sparse-rl (gymnasium only inside
``GymRobot.from_id``), and nothing is unpickled.
"""

from .card import CardError, PolicyCard, load_card
from .csr import CSRMatrix, csr_linear, csr_matmul
from .gym_robot import GymRobot
from .loop import ControlLoop, LoopReport, RobotInterface
from .policy import LatencyStats, Policy

__all__ = [
    "CSRMatrix",
    "CardError",
    "ControlLoop",
    "GymRobot",
    "LatencyStats",
    "LoopReport",
    "Policy",
    "PolicyCard",
    "RobotInterface",
    "csr_linear",
    "csr_matmul",
    "load_card",
]
