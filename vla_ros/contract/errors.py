"""The one error tree of vla_ros: :class:`VlaRosError` and the errors shared across areas.

Every error names the thing that is wrong, the value received and the fix, so a node can log
``str(err)`` once and hold. Nodes catch :class:`VlaRosError`; nothing here should ever take a
node down.
"""

from __future__ import annotations


class VlaRosError(Exception):
    """Base of every vla_ros error that a node or the CLI is expected to catch and report.

    ``VlaRosError(message, *, cause="")``: ``message`` names the thing, the value and the fix;
    ``cause`` is a short stable key (``"chunk_nonfinite"``, ``"image:wrist:encoding"``) that
    nodes log once per episode; it defaults to the class name in snake case. Every area's
    errors derive from it (and from the builtin they always were, e.g. ``ValueError``), so
    ``except VlaRosError`` catches anything vla_ros raises on purpose.
    """

    def __init__(self, message: str = "", *, cause: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.cause = cause or _snake_case(type(self).__name__)


def _snake_case(name: str) -> str:
    """``ChunkError`` -> ``chunk_error``."""
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


class CardError(VlaRosError):
    """A policy card (``card.yaml``) is missing, malformed, or disagrees with its model files."""


class ModelFileError(VlaRosError):
    """A model file named by a card is missing, corrupt, or does not match the card."""


class EngineMismatchError(ModelFileError):
    """A TensorRT engine was built for another TensorRT version or GPU than this one."""


class NonFiniteOutputError(VlaRosError):
    """The model produced NaN or Inf actions; they must never reach the robot."""


class UnsafeCheckpointError(VlaRosError):
    """A checkpoint can only be loaded by unpickling arbitrary Python objects."""


class ObservationError(VlaRosError):
    """An observation does not match what the card expects (cameras, shapes, values)."""


class InferenceError(VlaRosError):
    """The backend failed while running the model (an error inside torch/onnxruntime/TensorRT)."""


class BackendUnavailableError(VlaRosError):
    """The requested backend (torch CUDA, onnxruntime provider, TensorRT) is not usable here."""


class ExportError(VlaRosError):
    """Export failed: the model could not be traced, checked, or failed its parity gate."""


class ParityError(ExportError):
    """An exported graph's outputs differ from torch by more than the stated bound."""
