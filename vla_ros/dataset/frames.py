"""Camera frames of one planned episode -> PNG bytes (lossless) and pixel statistics.

Images are converted to RGB uint8 ``[H, W, 3]`` by the policy node's own decoding
(:func:`vla_ros.perception.image.msg_to_rgb8`: every Image encoding it accepts, and
CompressedImage), then encoded as PNG with OpenCV. A camera's frame size must not change within
the dataset (a LeRobot image feature has one shape).
"""

from __future__ import annotations

from vla_ros.dataset.align import NS
from vla_ros.dataset.mapping import DatasetError
from vla_ros.dataset.plan import PlannedEpisode
from vla_ros.dataset.recorded import stamp_ns
from vla_ros.dataset.stats import ImageStats
from vla_ros.eval.bag import BagSource


def encode_png(rgb: object) -> bytes:
    """RGB uint8 ``[H, W, 3]`` -> PNG bytes (OpenCV; lossless)."""
    import cv2

    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise DatasetError("OpenCV could not encode a frame as PNG")
    return buf.tobytes()


def episode_images(
    bag: BagSource,
    ep: PlannedEpisode,
    cameras: dict[str, str],
    shapes: dict[str, tuple[int, int]],
) -> tuple[dict[str, list[bytes]], dict[str, ImageStats]]:
    """PNG bytes per camera per frame of ``ep`` and per-camera pixel statistics.

    Reads the log-time span of the picked frames. ``shapes`` (camera -> (height, width)) is
    filled on the first frame and checked after.
    Raises :class:`DatasetError` when a picked frame cannot be decoded or a camera's frame size
    changes.
    """
    from vla_ros.perception.errors import ObservationError
    from vla_ros.perception.image import msg_to_rgb8

    cam_of = {t: c for c, t in cameras.items()}
    wanted: dict[tuple[str, int, int], list[int]] = {}
    for cam, picks in ep.picks.items():
        for frame, (log, stamp) in enumerate(picks):
            wanted.setdefault((cam, log, stamp), []).append(frame)
    pngs: dict[str, list[bytes | None]] = {cam: [None] * len(ep.stamps) for cam in cameras}
    stats = {cam: ImageStats() for cam in cameras}
    logs = [log for _cam, log, _stamp in wanted] or [0]
    for log, topic, msg in bag.messages(list(cameras.values()), min(logs), max(logs) + 1):
        cam = cam_of[topic]
        frames = wanted.pop((cam, log, stamp_ns(msg)), None)
        if frames is None:
            continue
        try:
            rgb = msg_to_rgb8(msg, source=f"camera {cam}")
        except ObservationError as exc:
            raise DatasetError(
                f"camera {cam!r} ({topic}) frame stamped {stamp_ns(msg) / NS:.3f} s cannot be "
                f"converted: {exc}"
            ) from None
        shape = (int(rgb.shape[0]), int(rgb.shape[1]))
        if shapes.setdefault(cam, shape) != shape:
            raise DatasetError(
                f"camera {cam!r} ({topic}) changes frame size from {shapes[cam]} to {shape} at "
                f"{stamp_ns(msg) / NS:.3f} s; a dataset image feature has one size: record one size"
            )
        png = encode_png(rgb)
        for frame in frames:
            pngs[cam][frame] = png
            stats[cam].add(rgb)
    if wanted:
        (cam, _, stamp), _frames = next(iter(wanted.items()))
        raise DatasetError(
            f"camera {cam!r} frame stamped {stamp / NS:.3f} s could not be read back from the bag "
            f"({dict(bag.decode_errors) or 'not found'}); the bag changed or is damaged"
        )
    return {cam: [p for p in v if p is not None] for cam, v in pngs.items()}, stats
