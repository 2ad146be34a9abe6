"""vla_ros.contract: the vocabulary every other package stands on, importing nothing above it.

- :mod:`~vla_ros.contract.card`: :class:`PolicyCard` (an exported policy's ``card.yaml``) and
  :func:`locate` (a card folder, a ``card.yaml`` path or a bundled card name -> the folder);
- :mod:`~vla_ros.contract.io_spec`: :class:`IOSpec` (model inputs/outputs), the model-input
  names, ``ACTION_MODES``;
- :mod:`~vla_ros.contract.observation`: :class:`Observation` (what a runtime consumes);
- :mod:`~vla_ros.contract.errors`: :class:`VlaRosError` and the errors shared across areas.

No torch, no ROS: importing this package is cheap everywhere (nodes, eval, the CLI).
"""
