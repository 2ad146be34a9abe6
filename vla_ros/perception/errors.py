"""Errors raised while turning sensor messages into a policy observation.

Every error carries a ``cause`` key: a short stable string that identifies *why* an input was
rejected (for example ``"image:wrist:encoding"``). Nodes log one line per cause when it first
appears and one when it clears, instead of one line per message (see :class:`FaultLog`).
"""

from __future__ import annotations

from vla_ros.contract.errors import ObservationError as _ObservationError


class ObservationError(_ObservationError, ValueError):
    """Base class: an input could not be used for an observation. ``cause`` keys log-once.

    ``ObservationError(message, *, cause)``, as every :class:`~vla_ros.contract.errors.VlaRosError`.
    """


class ImageFormatError(ObservationError):
    """An Image/CompressedImage message is malformed or has an encoding we cannot use."""


class MissingInputError(ObservationError):
    """No message has arrived yet on an input the policy needs."""


class StaleInputError(ObservationError):
    """An input is older than its staleness limit (or stamped ahead of the clock)."""


class MissingJointError(ObservationError):
    """``joint_states`` does not contain a joint the policy card needs."""


class NonFiniteInputError(ObservationError):
    """A state value is NaN or infinite."""
