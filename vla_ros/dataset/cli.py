"""``vla-ros bag2lerobot BAG --params YAML --out DIR``: a rosbag2 recording -> a LeRobot dataset.

    vla-ros bag2lerobot demo_bag --params config/vla.yaml --out datasets/reach --fps 10
    vla-ros bag2lerobot BAG --params robot.yaml --out DIR --episode-topic /recording --json
    vla-ros bag2lerobot BAG --params robot.yaml --out DIR --episode-service /record_episode

Topics as the nodes map them (:mod:`vla_ros.dataset.mapping`); frames on a fixed fps grid by
header stamps; missing frames reported on stderr and in ``--json``, never filled. Exit 0 when
written, 2 for bad input (nothing written).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml


def parse_episodes(text: str) -> list[tuple[float, float]]:
    """``'0:3.5,5:8'`` or a YAML/JSON file of ``[[start, end], ...]`` seconds from the bag's start.

    Raises ``argparse.ArgumentTypeError`` naming the malformed entry.
    """
    path = Path(text)
    if path.is_file():
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise argparse.ArgumentTypeError(f"--episodes {text}: not valid YAML/JSON ({exc})") from None
        items = data if isinstance(data, list) else None
    else:
        items = [entry.split(":") for entry in text.split(",") if entry.strip()]
    try:
        pairs = [(float(a), float(b)) for a, b in items]  # type: ignore[union-attr, misc]
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(
            f"--episodes {text!r}: give START:END seconds from the bag's start, comma separated "
            "(0:3.5,5:8), or a YAML file with a list of [start, end] pairs"
        ) from None
    if not pairs:
        raise argparse.ArgumentTypeError(f"--episodes {text!r} lists no episode")
    return pairs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The subcommand's arguments."""
    parser.add_argument("bag", type=Path, help="rosbag2 folder (sqlite3 or mcap) or a ROS 1 .bag")
    parser.add_argument("--out", type=Path, required=True, help="new dataset folder (must not exist)")
    parser.add_argument(
        "--params", type=Path, help="parameter YAML of the nodes (topics, joints); default: defaults"
    )
    parser.add_argument(
        "--card", help="policy card for camera and joint names ('bundled'); default: policy_node card"
    )
    parser.add_argument("--namespace", default="/", help="namespace the nodes ran in")
    parser.add_argument(
        "--fps", type=int, help="frame rate of the dataset; default: the first camera's rate, rounded"
    )
    parser.add_argument(
        "--tolerance-s",
        type=float,
        help="max distance of a sample's header stamp from its frame time; default: half a frame",
    )
    split = parser.add_argument_group("episodes (first given wins; default: --gap-s)")
    split.add_argument(
        "--episodes",
        type=parse_episodes,
        metavar="S:E,...|FILE",
        help="[start, end] seconds from the bag's start",
    )
    split.add_argument(
        "--episode-topic",
        help="std_msgs/Bool (true starts, false ends) or integer episode number topic",
    )
    split.add_argument(
        "--episode-service",
        metavar="NAME",
        help="a recorded service (ros2 bag record --services NAME, Jazzy+): std_srvs/srv/SetBool "
        "(true starts, false ends) or an empty request such as Trigger (calls alternate start, end)",
    )
    split.add_argument(
        "--gap-s", type=float, default=1.0, help="a recording pause this long starts a new episode"
    )
    parser.add_argument("--task", help="task text of every episode (default: vla/instruction, then the YAML)")
    parser.add_argument("--robot-type", help="info.json robot_type (e.g. so101)")
    parser.add_argument(
        "--action",
        choices=("auto", "command", "next_state"),
        default="auto",
        help="auto: the executor's command topic when recorded, else the next frame's state",
    )
    parser.add_argument("--action-topic", help="topic of the commanded positions (e.g. a leader arm)")
    parser.add_argument(
        "--on-gap",
        choices=("split", "drop"),
        default="split",
        help="missing frames inside an episode: split it there, or drop the episode",
    )
    parser.add_argument("--min-frames", type=int, default=1, help="shorter episodes are left out")
    parser.add_argument("--distro", default="humble", help="message definitions for bags without them")
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")


def run(args: argparse.Namespace) -> int:
    """Convert; 0 written, 2 bad input (the reason on stderr, nothing written)."""
    from vla_ros.dataset.convert import Options, convert

    bad = [
        f"{name} {value} must be {rule}"
        for name, value, ok, rule in (
            ("--fps", args.fps, args.fps is None or args.fps >= 1, ">= 1"),
            ("--tolerance-s", args.tolerance_s, args.tolerance_s is None or args.tolerance_s >= 0, ">= 0"),
            ("--gap-s", args.gap_s, args.gap_s > 0, "> 0"),
            ("--min-frames", args.min_frames, args.min_frames >= 1, ">= 1"),
        )
        if not ok
    ]
    if bad:
        print(f"vla-ros bag2lerobot: {'; '.join(bad)}", file=sys.stderr)
        return 2
    opts = Options(
        bag=args.bag,
        out=args.out,
        params=args.params,
        card=args.card,
        namespace=args.namespace,
        fps=args.fps,
        tolerance_s=args.tolerance_s,
        gap_s=args.gap_s,
        episode_topic=args.episode_topic,
        episode_service=args.episode_service,
        episodes=args.episodes,
        task=args.task,
        robot_type=args.robot_type,
        action=args.action,
        action_topic=args.action_topic,
        on_gap=args.on_gap,
        min_frames=args.min_frames,
        distro=args.distro,
    )
    try:
        result = convert(opts)
    except ValueError as exc:
        print(f"vla-ros bag2lerobot: {exc}", file=sys.stderr)
        return 2
    err = sys.stderr
    print(
        f"vla-ros bag2lerobot: wrote {result.out}: {len(result.episodes)} episodes, {result.frames} "
        f"frames at {result.fps} fps ({result.fps_source}), tolerance {result.tolerance_s * 1e3:.1f} ms",
        file=err,
    )
    for line in result.notes:
        print(f"  note: {line}", file=err)
    for line in result.report:
        print(f"  missing: {line}", file=err)
    if not result.report:
        print("  no frame missing", file=err)
    else:
        print(
            "  frames are missing where a stream has no sample within the tolerance: check --fps (a rate "
            "every camera keeps), --tolerance-s and the recording",
            file=err,
        )
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    return 0
