"""The ``main()`` every vla_ros node executable shares: init, build, spin, clean shutdown."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import traceback
from collections.abc import Callable
from typing import Any

import rclpy
import rclpy.logging
from rclpy._rclpy_pybind11 import RCLError
from rclpy.exceptions import NameValidationException, ParameterException
from rclpy.executors import (
    Executor,
    ExternalShutdownException,
    MultiThreadedExecutor,
    SingleThreadedExecutor,
)
from rclpy.node import Node

from vla_ros.util.dds import use_large_data_profile
from vla_ros.util.param_files import params_files_problem


def _default_spin(node: Node) -> None:
    executor = MultiThreadedExecutor()
    executor.add_node(node)
    executor.spin()


def spin_single_threaded(node: Node) -> None:
    """Spin ``node`` on a SingleThreadedExecutor (for nodes whose callbacks never block)."""
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    executor.spin()


def fifo_priority(priority: int) -> OSError | None:
    """Give the calling thread SCHED_FIFO ``priority`` (1..99); the error when it is not granted
    (no rtprio rights, not Linux), None when granted or ``priority`` <= 0 (nothing asked)."""
    if priority <= 0:
        return None
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (PermissionError, OSError, AttributeError) as exc:
        return exc if isinstance(exc, OSError) else OSError(str(exc))
    return None


def log_at(logger: Any, level: str, text: str) -> None:
    """Log ``text`` at ``level`` (``error``, ``warning``, else info) on an rclpy logger: one call
    site per severity, as rclpy refuses a severity change at the same call site."""
    if level == "error":
        logger.error(text)
    elif level == "warning":
        logger.warning(text)
    else:
        logger.info(text)


def _node_label(make_node: Callable[..., Node]) -> str:
    """``PolicyNode`` -> ``policy_node`` (the executable's name, for start-up error lines)."""
    name = getattr(make_node, "__name__", "node")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


#: construction errors that are a configuration problem: one line, exit 1, no traceback
STARTUP_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,  # ParamSpec checks, vla_ros ConfigError, a card that does not fit the parameters
    ParameterException,  # rclpy: wrong type, out of the descriptor's range, read-only, ...
    NameValidationException,  # a remapped node name or namespace that is not a valid ROS name
)

_FIX = "fix it in the parameter YAML or the launch arguments"
#: rclpy's own wordings, rewritten as ``parameter name=value: reason``
_RCLPY_WORDINGS = (
    (
        re.compile(
            r"Invalid parameter value \((?P<value>.*?)\) for parameter\. "
            r"Reason: (?P<reason>.*): (?P<name>[^:\s]+)$",
            re.S,
        ),
        "parameter {name}={value}: {reason}; " + _FIX,
    ),
    (
        re.compile(
            r"Trying to set parameter '(?P<name>[^']*)' to '(?P<value>.*)' of type '(?P<got>\w+)', "
            r"expecting type '(?P<want>\w+)': [^:\s]+$",
            re.S,
        ),
        "parameter {name}={value!r} is a {got}; it must be a {want}; " + _FIX,
    ),
)


def startup_message(exc: BaseException) -> str:
    """One line for a configuration error raised while a node is built.

    rclpy's wordings ("Invalid parameter value (v) for parameter. Reason: ...: name", "Trying to
    set parameter 'name' to 'v' of type ...") become ``parameter name=v: reason; <fix>``; other
    errors keep their own text (vla_ros errors already name the parameter, the value and the fix).
    """
    text = str(exc)
    for pattern, template in _RCLPY_WORDINGS:
        match = pattern.search(text)
        if match:
            text = text[: match.start()] + template.format(**match.groupdict())
            break
    return " ".join(text.split())  # one line


def _destroy_half_built(exc: BaseException) -> None:
    """Destroy the node(s) whose ``__init__`` raised ``exc``, so rclpy does not retry it.

    rclpy's context keeps every node it created and calls ``destroy_node()`` on each at
    shutdown; a node whose ``__init__`` failed half-way lacks what its own ``destroy_node``
    stops (threads, events) and would raise a second traceback there. Its own teardown is tried
    first, then rclpy's base teardown, then the node is untracked.
    """
    tb = exc.__traceback__
    nodes: list[Node] = []
    while tb is not None:
        obj = tb.tb_frame.f_locals.get("self")
        if isinstance(obj, Node) and all(obj is not n for n in nodes):
            nodes.append(obj)
        tb = tb.tb_next
    for node in nodes:
        destroy_half_built(node)


def destroy_half_built(node: Node) -> None:
    """Tear down a node whose ``__init__`` failed half-way: its own teardown first, then rclpy's
    base teardown, then untrack it from its context.

    Besides a second traceback at shutdown, a half-built node left alive keeps its /rosout
    registration: rcl then routes every later log line of a node with the same name through the
    dead node's publisher (seen on Jazzy: a re-created ``policy_node`` lost its /rosout lines).
    """
    for teardown in (type(node).destroy_node, Node.destroy_node):
        try:
            teardown(node)
            break
        except Exception:  # half-built: whatever is missing, try the next teardown
            continue
    with contextlib.suppress(Exception):
        node.context.untrack_node(node)


def run_node(
    make_node: Callable[[], Node],
    args: list[str] | None = None,
    spin: Callable[[Node], None] | None = None,
    *,
    name: str | None = None,
) -> int:
    """Init (with the Fast DDS large-data profile), build the node, spin, destroy, shut down.

    :func:`use_large_data_profile` runs before ``rclpy.init(args)``; spinning lasts until
    Ctrl-C or shutdown.

    ``spin(node)`` defaults to a MultiThreadedExecutor; a node with its own threading (the executor
    node's real-time control thread) passes its own. A node that fails to build stops the
    process: a configuration error (:data:`STARTUP_ERRORS`: a bad parameter names itself and
    its value) is one FATAL line and exit status 1, without a traceback; any other error prints
    its traceback once and also returns 1. ``name`` labels those lines (default: the class name
    in snake case). Returns 0 after a normal shutdown.
    """
    label = name or _node_label(make_node)
    problem = params_files_problem(sys.argv if args is None else args)
    if problem:  # --params-file checked before rcl parses it (size limit, aliases, ...)
        print(f"[FATAL] [{label}]: cannot start: {problem}", file=sys.stderr)
        return 1
    use_large_data_profile()  # before the first participant exists
    try:
        rclpy.init(args=args)
    except RCLError as exc:  # unparsable --ros-args (rcl has logged its own line too)
        print(f"[FATAL] [{label}]: cannot start: {startup_message(exc)}", file=sys.stderr)
        return 1
    node = None
    try:
        try:
            node = make_node()
        except STARTUP_ERRORS as exc:
            rclpy.logging.get_logger(label).fatal(f"cannot start: {startup_message(exc)}")
            _destroy_half_built(exc)
            return 1
        except Exception as exc:
            traceback.print_exc()
            _destroy_half_built(exc)
            return 1
        (spin or _default_spin)(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        _teardown(node)
    return 0


def _teardown(node: Node | None) -> None:
    """Destroy the node and shut down with SIGINT ignored: a second Ctrl-C (or launch's SIGINT
    arriving while the first one unwinds) must not cut the control thread's join short and print a
    traceback. A Python handler (pytest's, an embedding program's) is restored afterwards; rclpy's
    own is installed in C, which Python sees as ``SIG_DFL``: restoring that would let the next
    Ctrl-C kill the exiting process, so SIGINT stays ignored until it exits."""
    previous = None
    with contextlib.suppress(ValueError):  # signal handlers can only change in the main thread
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    finally:
        if callable(previous):
            signal.signal(signal.SIGINT, previous)


__all__ = [
    "STARTUP_ERRORS",
    "Executor",
    "fifo_priority",
    "log_at",
    "run_node",
    "spin_single_threaded",
    "startup_message",
]
