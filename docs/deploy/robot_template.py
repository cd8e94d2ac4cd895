"""Template: run an exported sparse-rl policy on a real robot (a UR5 arm at 25 Hz, as an example).

Copy this file to the robot computer, fill in the four methods marked HARDWARE, and run::

    pip install numpy onnxruntime          # plus your robot / camera drivers, e.g. ur_rtde
    pip install --no-deps ./sparse-rl      # a checkout or wheel; the runtime needs no torch/gym
    python -m sparse_rl.runtime check exported_policy/      # card, hashes, act() latency
    python robot_template.py exported_policy/ --ip 192.168.1.10 --hz 25 --steps 750

What the runtime already does for you (see ``sparse_rl.runtime``):

- ``Policy`` checks the card and model hashes, normalizes observations, stacks camera frames,
  rescales and clips actions to the card's bounds, and answers a bad observation (``None``, NaN,
  wrong shape or dtype) with the card's ``safe_action`` instead of raising.
- ``ControlLoop`` reads, acts and sends on an absolute 25 Hz schedule. Its watchdog sends
  ``safe_action`` (zero joint velocity) the moment a step misses its 40 ms deadline, drops the
  late action, and calls ``safe_stop()`` after ``max_overruns`` periods in a row. Any exception
  or Ctrl-C also ends in ``safe_stop()``.

What stays yours: the drivers, the units (the policy's actions are in the *training env's*
units, here joint velocities in rad/s), and hardware limits, which ``send_action`` should enforce
again: the card's bounds come from a simulator, not from this arm's safety configuration.
Keep the teach pendant's emergency stop within reach; nothing in software replaces it.
"""

from __future__ import annotations

import argparse
import threading
from pathlib import Path

import numpy as np

from sparse_rl.runtime import ControlLoop, Policy, RobotInterface

#: Joint positions (rad) to start each episode from; choose a pose clear of the workspace.
START_POSE = np.array([0.0, -1.57, 1.57, -1.57, -1.57, 0.0])
#: Hardware cap on joint speed (rad/s), applied after the policy's own clipping.
MAX_JOINT_SPEED = 0.5


class UR5Robot:
    """A UR5 driven by joint-velocity commands (``speedJ``), observed by joints or a camera.

    :param ip: the arm's address (RTDE).
    :param hz: the control rate; ``speedJ`` is given one period to reach each command.
    :param frame_shape: ``(C, H, W)`` of one camera frame for pixel policies, ``None`` for
        policies that read joint positions and velocities.
    """

    def __init__(self, ip: str, hz: float, frame_shape: tuple[int, ...] | None = None) -> None:
        self.ip = ip
        self.period = 1.0 / hz
        self.frame_shape = frame_shape
        self._stop_lock = threading.Lock()
        self._stopped = False
        # HARDWARE: connect once, here. With ur_rtde, for example:
        #   import rtde_control, rtde_receive
        #   self.control = rtde_control.RTDEControlInterface(ip)
        #   self.receive = rtde_receive.RTDEReceiveInterface(ip)
        # For a camera, start a thread that keeps only the newest frame, so that
        # read_observation() never waits for the sensor's exposure (it runs inside the 40 ms
        # step budget): e.g. pyrealsense2 or cv2.VideoCapture in a daemon thread.

    # ------------------------------------------------------------------ RobotInterface

    def reset(self) -> np.ndarray:
        """Move to ``START_POSE`` (slowly, outside the control loop's timing) and re-enable."""
        with self._stop_lock:
            self._stopped = False
        # HARDWARE: e.g. self.control.moveJ(START_POSE.tolist(), speed=0.3, acceleration=0.5)
        # Blocking is fine here: the loop re-anchors its schedule after reset() returns.
        raise NotImplementedError(
            "UR5Robot.reset: move the arm to START_POSE (e.g. ur_rtde moveJ) and return "
            "read_observation()"
        )

    def read_observation(self) -> np.ndarray:
        """What the policy was trained on, in the same units, layout and order."""
        if self.frame_shape is not None:
            # HARDWARE (pixels): the newest camera frame, cropped and resized like the training
            # renders, as uint8 channel-first (C, H, W), e.g.
            #   frame = cv2.resize(self._latest_bgr, (W, H))[:, :, ::-1]   # BGR -> RGB
            #   return np.ascontiguousarray(frame.transpose(2, 0, 1))
            # Return None if no fresh frame arrived: the policy answers with the safe action.
            raise NotImplementedError(
                f"UR5Robot.read_observation: return the newest camera frame as uint8 "
                f"{tuple(self.frame_shape)} (channel-first RGB), or None when there is none"
            )
        # HARDWARE (vector): e.g. np.concatenate([self.receive.getActualQ(),
        #                                          self.receive.getActualQd()]).astype(np.float32)
        raise NotImplementedError(
            "UR5Robot.read_observation: return joint positions and velocities as float32, in "
            "the order and units of the training env's observation"
        )

    def send_action(self, action: np.ndarray) -> bool:
        """Command joint velocities for one period; True ends the episode (e.g. protective stop)."""
        qd = np.clip(np.asarray(action, dtype=np.float64), -MAX_JOINT_SPEED, MAX_JOINT_SPEED)
        with self._stop_lock:
            if self._stopped:  # after safe_stop, nothing moves the arm until reset()
                return True
            # HARDWARE: e.g. self.control.speedJ(qd.tolist(), 1.0, self.period)
            #   and end the episode on a safety event:
            #   return self.receive.isProtectiveStopped() or self.receive.isEmergencyStopped()
            raise NotImplementedError(
                f"UR5Robot.send_action: command joint velocities {qd.round(3).tolist()} rad/s "
                "(e.g. ur_rtde speedJ) and return True when the episode must end"
            )

    def safe_stop(self) -> None:
        """Decelerate to standstill; idempotent and callable from the watchdog thread."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
            # HARDWARE: e.g. self.control.speedStop(2.0)   # rad/s^2 deceleration
            raise NotImplementedError(
                "UR5Robot.safe_stop: bring the arm to rest (e.g. ur_rtde speedStop) without "
                "raising when it is already stopped"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description="Run an exported policy on a UR5.")
    parser.add_argument("policy_dir", type=Path)
    parser.add_argument("--ip", required=True, help="the arm's IP address")
    parser.add_argument("--hz", type=float, default=25.0)
    parser.add_argument("--steps", type=int, default=750, help="30 s at 25 Hz")
    parser.add_argument("--max-overruns", type=int, default=3)
    parser.add_argument("--backend", choices=["onnx", "numpy"], default="onnx")
    args = parser.parse_args()

    policy = Policy(args.policy_dir, backend=args.backend)  # CardError if anything is off
    card = policy.card
    if card.action.kind != "box" or card.action.shape != (6,):
        parser.error(
            "this template sends 6 joint velocities; the policy has "
            f"{card.action.kind} actions of shape {card.action.shape}"
        )
    frame_shape = card.observation.frame_shape if card.observation.kind == "pixels" else None
    robot = UR5Robot(args.ip, args.hz, frame_shape)
    assert isinstance(robot, RobotInterface)
    print(card.describe())

    loop = ControlLoop(policy, robot, hz=args.hz, max_overruns=args.max_overruns)
    report = loop.run(steps=args.steps)  # safe_stop() runs however this ends
    print(report.summary())
    return 0 if report.stopped_reason != "watchdog" else 1


if __name__ == "__main__":
    raise SystemExit(main())
