"""Wall time of the `kerakit` command's light paths, next to TensorFlow's import.

    python scripts/bench_cli.py [--repeat 5]

`kerakit --help`, `kerakit recipes` and `kerakit run digits --help` must
answer in under a second: they never import TensorFlow (whose import alone
takes several seconds). Each command runs in a fresh process, `--repeat`
times, interleaved with a bare `python -c "import tensorflow"` measured in the
same loop, so the ratio holds even on a busy machine. Prints a Markdown table
for BENCHMARKS.md.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_S = 1.0


def _kerakit():
    script = Path(sys.executable).with_name("kerakit")
    return [str(script)] if script.exists() else [sys.executable, "-m", "kerakit.cli"]


def _time(command, env):
    start = time.perf_counter()
    result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {result.stderr.decode()[-500:]}")
    return elapsed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per command (default: 5)")
    args = parser.parse_args(argv)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    commands = {
        "kerakit --help": _kerakit() + ["--help"],
        "kerakit recipes": _kerakit() + ["recipes"],
        "kerakit run digits --help": _kerakit() + ["run", "digits", "--help"],
        "python -c 'import tensorflow' (reference)": [sys.executable, "-c", "import tensorflow"],
    }
    times = {name: [] for name in commands}
    for _ in range(args.repeat):
        for name, command in commands.items():
            times[name].append(_time(command, env))
    reference = statistics.median(times["python -c 'import tensorflow' (reference)"])
    print("| command | median (s) | min (s) | max (s) | vs. TensorFlow import | target |")
    print("|---|---|---|---|---|---|")
    ok = True
    for name, values in times.items():
        median = statistics.median(values)
        light = not name.startswith("python")
        passed = median < TARGET_S
        ok &= passed or not light
        target = (f"< {TARGET_S:g} s: {'met' if passed else 'MISSED'}") if light else "-"
        print(f"| `{name}` | {median:.3f} | {min(values):.3f} | {max(values):.3f} | "
              f"{median / reference:.2f}× | {target} |")
    print(f"\n{args.repeat} runs each, interleaved; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
