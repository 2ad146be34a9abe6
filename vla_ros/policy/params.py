"""The policy node's parameters: one table of specs (:data:`PARAMS`).

Kept apart from the node (and free of ROS) so the same table declares the node's parameters,
validates the YAML that ``vla-ros eval`` replays a bag with, and generates ``docs/parameters.md``
and the ``config/*.yaml`` headers (``make params-docs``). A new parameter is one more
:class:`ParamSpec` entry here.
"""

from __future__ import annotations

from vla_ros.util.params import ParamSpec

QOS_CHOICES = ("sensor_data", "reliable", "best_effort")

PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("card", "", "Policy card folder (made by `vla-ros export`); required", read_only=True),
    ParamSpec(
        "backend",
        "onnxruntime",
        "Runtime backend",
        read_only=True,
        choices=("onnxruntime", "torch", "tensorrt"),
    ),
    ParamSpec(
        "device",
        "auto",
        "Backend device: onnxruntime providers ('auto', 'cpu', 'cuda', "
        "comma list) or torch device ('cpu', 'cuda'); 'auto' = the backend's default",
        read_only=True,
    ),
    ParamSpec("threads", 0, "Backend CPU threads; 0 = the backend's default", read_only=True, range=(0, 64)),
    ParamSpec(
        "cameras",
        [],
        "Camera topics as 'name=topic' entries, one per card camera; a "
        "camera left out uses camera/<name>/image_raw; a topic ending in /compressed is "
        "read as sensor_msgs/CompressedImage",
        type="string_array",
        read_only=True,
    ),
    ParamSpec(
        "state_joints",
        [],
        "joint_states names for the card's state vector, in the card's "
        "order (renames the card's joints for this robot); empty = the card's "
        "state_joints",
        type="string_array",
        read_only=True,
    ),
    ParamSpec(
        "action_joints",
        [],
        "Joint names written into each ActionChunk, in the card's "
        "action order; empty = the card's action_joints",
        type="string_array",
        read_only=True,
    ),
    ParamSpec("instruction", "", "Language instruction; replaced by each std_msgs/String on vla/instruction"),
    ParamSpec(
        "rate_hz",
        0.0,
        "Inference rate; 0 = as fast as possible (whenever a new "
        "observation is ready and the previous inference has finished)",
        range=(0.0, 1000.0),
        unit="Hz",
    ),
    ParamSpec(
        "inference_trigger",
        "rate",
        "rate: infer at rate_hz (0: as fast as possible); horizon: start an inference when the "
        "executor has fewer than d + horizon_margin_steps chunk steps of actions left (d: the "
        "inference delay estimate; covered: the executor's committed actions or the last chunk)",
        read_only=True,
        choices=("rate", "horizon"),
    ),
    ParamSpec(
        "horizon_margin_steps",
        2,
        "inference_trigger horizon: chunk steps of slack beyond the inference delay",
        range=(0, 10000),
        unit="steps",
    ),
    ParamSpec(
        "committed_actions_topic",
        "executor_node/committed_actions",
        "The executor's committed actions (vla_ros/ActionChunk) for real-time chunking and the "
        "horizon trigger; empty: do not subscribe",
        read_only=True,
    ),
    ParamSpec(
        "committed_max_age_s",
        0.25,
        "Committed actions received longer ago than this are not used (one log line)",
        range=(0.001, 60.0),
        unit="s",
    ),
    ParamSpec(
        "image_staleness_s",
        0.2,
        "Maximum age of each camera's newest image, against the node clock",
        range=(0.001, 60.0),
        unit="s",
    ),
    ParamSpec(
        "state_staleness_s",
        0.1,
        "Maximum age of the newest joint_states, against the node clock",
        range=(0.001, 60.0),
        unit="s",
    ),
    ParamSpec(
        "future_tolerance_s",
        0.05,
        "How far a stamp may be ahead of the node clock before it is rejected (clock skew)",
        range=(0.0, 10.0),
        unit="s",
    ),
    ParamSpec(
        "obs_history_dt_s",
        0.0,
        "Spacing of observation history frames when the card has obs_history > 1; 0 = the card's dt",
        read_only=True,
        range=(0.0, 10.0),
        unit="s",
    ),
    ParamSpec(
        "depth_max_m",
        2.0,
        "Depth images (16UC1 mm, 32FC1 m) map [0, depth_max_m] to [0, 255]",
        range=(0.01, 100.0),
        unit="m",
    ),
    ParamSpec(
        "max_image_pixels",
        50_000_000,
        "Compressed images whose header declares more pixels (width x height) are rejected before "
        "decoding (decompression bombs)",
        range=(1, 1 << 30),
        unit="px",
    ),
    ParamSpec(
        "fault_settle_s",
        1.0,
        "A camera's image fault or a joint_states fault ends (one 'recovered' line) only after this "
        "long without it, so an input alternating good and bad messages logs one line per episode, "
        "not per message",
        read_only=True,
        range=(0.0, 60.0),
        unit="s",
    ),
    ParamSpec(
        "image_qos", "sensor_data", "QoS of the camera subscriptions", read_only=True, choices=QOS_CHOICES
    ),
    ParamSpec(
        "state_qos",
        "sensor_data",
        "QoS of the joint_states subscription",
        read_only=True,
        choices=QOS_CHOICES,
    ),
    ParamSpec(
        "zero_copy_images",
        True,
        "Subscribe to cameras as serialized bytes and read Image/CompressedImage fields in place "
        "(the pixels stay a view into the delivered buffer); false = rclpy's message objects, "
        "which copy every frame",
        read_only=True,
    ),
    ParamSpec("qos_depth", 5, "History depth of the input subscriptions", read_only=True, range=(1, 1000)),
    ParamSpec(
        "chunk_qos_depth",
        10,
        "History depth of the reliable vla/action_chunk publisher",
        read_only=True,
        range=(1, 1000),
    ),
    ParamSpec(
        "infer_on",
        "all_new",
        "all_new: infer once every camera and the joint state have a new message (one inference per "
        "input set); any_new: whenever any input is new (lower latency for one fast input, but "
        "inferences on partly old inputs)",
        read_only=True,
        choices=("all_new", "any_new"),
    ),
    ParamSpec(
        "load_retry_s",
        5.0,
        "When the card cannot be loaded (missing, corrupt, engine for another GPU): retry every load_retry_s",
        read_only=True,
        range=(0.1, 3600.0),
        unit="s",
    ),
    ParamSpec(
        "warmup",
        3,
        "Inferences on a synthetic observation before subscribing",
        read_only=True,
        range=(0, 1000),
    ),
    ParamSpec(
        "keep_heap",
        True,
        "Process-wide: serve camera-frame-sized allocations from the heap and keep freed memory "
        "(glibc mallopt), so each received frame does not page-fault fresh memory in "
        "(~1 ms per 640x480 rgb8 frame on a small VM)",
        read_only=True,
    ),
    ParamSpec(
        "lock_memory",
        False,
        "Process-wide mlockall (needs CAP_IPC_LOCK or a memlock ulimit; refused -> a warning)",
        read_only=True,
    ),
    ParamSpec(
        "diagnostics_period_s",
        1.0,
        "Period of the /diagnostics status",
        read_only=True,
        range=(0.05, 60.0),
        unit="s",
    ),
)

PARAM_BY_NAME: dict[str, ParamSpec] = {s.name: s for s in PARAMS}
