"""Local multi-worker runs: N processes on 127.0.0.1, each told its place in the cluster.

Each process gets `TF_CONFIG` (TensorFlow's `strategy="multiworker"`) and the
`KERAS_DISTRIBUTION_*` variables that `keras.distribution.initialize()` reads
(JAX: process 0 coordinates, collectives on CPU over gloo), so one launcher
serves both backends. `python -m kerakit.distribute --workers 2 train.py` runs `main`.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

from kerakit.checks import check_count
from kerakit.errors import ConfigError, WorkerTimeoutError

# Local launcher --------------------------------------------------------------------


def free_ports(count, host="127.0.0.1"):
    """Returns `count` TCP ports that were free on `host` a moment ago."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def tf_config(num_workers, index, ports, host="127.0.0.1"):
    """The `TF_CONFIG` value for worker `index` of a cluster on `host`."""
    return json.dumps(
        {
            "cluster": {"worker": [f"{host}:{port}" for port in ports]},
            "task": {"type": "worker", "index": index},
        }
    )


class WorkerResult:
    """How one launched worker ended: `index`, `returncode`, `output` (None unless captured)."""

    def __init__(self, index, returncode, output):
        self.index = index
        self.returncode = returncode
        self.output = output

    def __repr__(self):
        return f"WorkerResult(index={self.index}, returncode={self.returncode})"


def jax_environment(num_workers, index, coordinator_port, host="127.0.0.1"):
    """The variables `keras.distribution.initialize()` reads in process `index` of `num_workers`."""
    return {
        "KERAS_DISTRIBUTION_JOB_ADDRESSES": f"{host}:{coordinator_port}",
        "KERAS_DISTRIBUTION_NUM_PROCESSES": str(num_workers),
        "KERAS_DISTRIBUTION_PROCESS_ID": str(index),
        # JAX's cross-process collectives on CPU (the default in recent JAX; named
        # so that an older or differently configured JAX does the same).
        "JAX_CPU_COLLECTIVES_IMPLEMENTATION": "gloo",
    }


def launch_local(command, num_workers=2, *, timeout=600, capture=False, env=None, cwd=None):
    """Runs `command` as `num_workers` workers of one cluster on 127.0.0.1.

    Each process gets a `TF_CONFIG` naming every worker (on free loopback
    ports) and its own index, which is what `strategy="multiworker"` reads —
    the same as on several machines, where each host runs the script with its
    own `TF_CONFIG`. On JAX, the same processes find each other through the
    `KERAS_DISTRIBUTION_*` variables (see `jax_environment`):
    `keras.distribution.initialize()`, or `kerakit.distribute.use_data_parallel()`,
    joins them. Processes are always cleaned up: if one fails, or the
    time runs out, the others are killed.

    Args:
        command: the program and its arguments, e.g.
            `[sys.executable, "train.py", "--epochs", "3"]`.
        num_workers: number of worker processes. Defaults to 2.
        timeout: seconds for the whole run before every worker is killed and
            `WorkerTimeoutError` is raised. Defaults to 600.
        capture: collect each worker's output (stdout and stderr) instead of
            passing it through. Defaults to False.
        env: extra environment variables for every worker.
        cwd: working directory of the workers.

    Returns:
        A list of `WorkerResult`, one per worker, in index order.

    Example:

    ```python
    results = kerakit.launch_local([sys.executable, "train.py"], num_workers=2)
    assert all(r.returncode == 0 for r in results)
    ```
    """
    check_count("num_workers", num_workers)
    command = [os.fspath(part) for part in command]
    if not command:
        raise ConfigError("`command` is empty; pass the program and its arguments, e.g. ['python', 'train.py'].")
    *ports, coordinator = free_ports(num_workers + 1)
    processes = []
    outputs = []
    deadline = time.monotonic() + timeout
    try:
        for index in range(num_workers):
            worker_env = dict(os.environ, **(env or {}))
            worker_env["TF_CONFIG"] = tf_config(num_workers, index, ports)
            worker_env["KERAKIT_WORKER_INDEX"] = str(index)
            worker_env.update(jax_environment(num_workers, index, coordinator))
            output = tempfile.TemporaryFile(mode="w+") if capture else None
            outputs.append(output)
            processes.append(
                subprocess.Popen(
                    command,
                    env=worker_env,
                    cwd=cwd,
                    stdout=output,
                    stderr=subprocess.STDOUT if capture else None,
                    start_new_session=True,
                )
            )
        while True:
            states = [p.poll() for p in processes]  # every one, so each returncode is fresh
            if all(state is not None for state in states):
                break
            if any(state not in (None, 0) for state in states):
                break  # a failed worker leaves the others waiting on it forever
            if time.monotonic() > deadline:
                raise WorkerTimeoutError(
                    f"{sum(p.poll() is None for p in processes)} of {num_workers} worker(s) were "
                    f"still running after {timeout} s and were killed. Raise `timeout` or check "
                    f"that every worker can reach the others' ports."
                )
            time.sleep(0.2)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
        for process in processes:
            process.wait()
    results = []
    for index, (process, output) in enumerate(zip(processes, outputs, strict=True)):
        text = None
        if output is not None:
            output.seek(0)
            text = output.read()
            output.close()
        results.append(WorkerResult(index, process.returncode, text))
    return results


def main(argv=None):
    """`python -m kerakit.distribute --workers 2 train.py [args]`: a local multi-worker run.

    The command may also be any program: `... --workers 2 -- kerakit run NAME
    --strategy multiworker` (TensorFlow) or `--strategy data_parallel` (JAX).
    A command starting with a `.py` file runs with this Python.
    """
    parser = argparse.ArgumentParser(
        prog="python -m kerakit.distribute",
        description="Run a command as N workers of one cluster on 127.0.0.1: each gets its "
        "own TF_CONFIG (TensorFlow, strategy='multiworker') and KERAS_DISTRIBUTION_* "
        "variables (JAX, keras.distribution.initialize).",
    )
    parser.add_argument("--workers", type=int, default=2, help="number of workers (default 2)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds before all are killed")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="script.py [args], or -- program [args]")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("name the script or command every worker runs, e.g. train.py")
    if command[0].endswith(".py"):
        command = [sys.executable, *command]
    try:
        results = launch_local(command, args.workers, timeout=args.timeout)
    except (ConfigError, WorkerTimeoutError, OSError) as error:
        print(f"kerakit.distribute: {error}", file=sys.stderr)
        return 1
    failed = [r.index for r in results if r.returncode != 0]
    if failed:
        print(f"kerakit.distribute: worker(s) {failed} failed.", file=sys.stderr)
        return 1
    return 0
