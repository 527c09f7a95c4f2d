"""Benchmark: `kerakit serve` under load, with and without micro-batching.

Trains a digits model (kerakit's default MLP, 128-64 units, 3 epochs; `--units`) unless
`--model` names a `.keras` file, run directory or export. For each mode it
starts `kerakit serve --port 0` in its own process, sends warm-up requests,
then `--requests` single-row `:predict` requests from `--clients` concurrent
clients (threads with keep-alive connections, on 127.0.0.1), and records
errors, p50 / p99 latency and requests per second. Every answer is checked:
status 200 and the same class as the model predicts locally.

Modes, each in a fresh server process, alternated `--repeats` times:
  batching     the default: concurrent requests run as one model call
  per-request  `--no-batching`: one model call per request (same compiled call)
  predict      reference: a textbook Starlette endpoint calling `model.predict`
               once per request (fewer requests: each call takes tens of ms)

Target: micro-batching at least 3x the requests/s of one predict per request.

Usage: python scripts/bench_serve.py [--requests 2000] [--clients 16] [--repeats 1] [--json]
"""

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent


# The textbook server: what one writes without kerakit (run with --textbook-server).
def textbook_server(model_path, port_file):
    import keras
    import numpy as np
    import uvicorn
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    model = keras.saving.load_model(model_path, safe_mode=True)

    async def predict(request):
        payload = await request.json()
        x = np.asarray(payload["instances"], dtype="float32")
        y = await run_in_threadpool(model.predict, x, verbose=0)
        return JSONResponse({"predictions": y.tolist()})

    app = Starlette(routes=[Route("/v1/models/{name}:predict", predict, methods=["POST"])])
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False,
                            http="h11", loop="asyncio")
    sock = config.bind_socket()
    Path(port_file).write_text(str(sock.getsockname()[1]))
    uvicorn.Server(config).run(sockets=[sock])


def start_server(mode, model_path, name):
    """Starts a server process; returns (process, base URL of the model)."""
    if mode == "predict":
        port_file = Path(tempfile.mkdtemp()) / "port"
        process = subprocess.Popen(
            [sys.executable, __file__, "--textbook-server", str(model_path), str(port_file)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for _ in range(1200):
            if port_file.is_file() and port_file.read_text():
                return process, f"/v1/models/{name}", int(port_file.read_text())
            if process.poll() is not None:
                raise RuntimeError(f"textbook server died: {process.stderr.read()}")
            time.sleep(0.05)
        raise RuntimeError("textbook server did not start")
    command = [sys.executable, "-m", "kerakit.cli", "serve", str(model_path), "--port", "0",
               "--model-name", name]
    if mode == "per-request":
        command.append("--no-batching")
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    line = process.stdout.readline()
    if "http://" not in line:
        process.kill()
        raise RuntimeError(f"kerakit serve did not start: {line}{process.stderr.read()}")
    url = line.split("at ", 1)[1].strip()
    port = int(url.split(":")[2].split("/")[0])
    return process, f"/v1/models/{name}", port


def cpu_seconds(pid):
    """User + system CPU seconds of a process so far (Linux /proc), or None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_ready(port, path, body, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("POST", path + ":predict", body=body,
                               headers={"Content-Type": "application/json"})
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server did not answer")


def load(port, path, bodies, expected, clients):
    """Sends every body once from `clients` threads; returns (seconds, latencies, errors)."""
    latencies, errors = [], []
    lock = threading.Lock()
    next_index = iter(range(len(bodies)))

    def client():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine, bad = [], []
        while True:
            with lock:
                i = next(next_index, None)
            if i is None:
                break
            start = time.perf_counter()
            try:
                connection.request("POST", path + ":predict", body=bodies[i],
                                   headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as error:
                bad.append(repr(error))
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            mine.append(time.perf_counter() - start)
            if response.status != 200:
                bad.append(f"{response.status}: {data[:200]!r}")
                continue
            row = json.loads(data)["predictions"][0]
            if max(range(len(row)), key=row.__getitem__) != expected[i]:
                bad.append(f"request {i}: class differs from the local model's")
        with lock:
            latencies.extend(mine)
            errors.extend(bad)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start, latencies, errors


def train_model(folder, units=(128, 64)):
    import numpy as np
    from sklearn.datasets import load_digits

    import kerakit as kk

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    spec = kk.infer_spec(y)
    model = kk.build_model(spec, input_shape=(64,), units=units, seed=0)
    kk.fit(model, x, y, epochs=3, seed=0, verbose=0)
    path = Path(folder) / "digits.keras"
    model.save(path)
    return path


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--textbook-server":
        textbook_server(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="a .keras file, run directory or export")
    parser.add_argument("--units", default="128,64",
                        help="hidden layer widths of the digits model trained here (default 128,64)")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--predict-requests", type=int, default=200,
                        help="requests for the model.predict reference (0 skips it)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the result as JSON only")
    args = parser.parse_args()

    import numpy as np
    from sklearn.datasets import load_digits

    from kerakit.saving import load_model

    workdir = tempfile.mkdtemp(prefix="bench_serve_")
    units = tuple(int(u) for u in args.units.split(","))
    model_path = Path(args.model) if args.model else train_model(workdir, units)
    model = load_model(model_path)
    x, _ = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    rows = x[np.arange(args.requests) % len(x)]
    expected = model.predict(rows, verbose=0).argmax(axis=1).tolist()
    bodies = [json.dumps({"instances": [r.tolist()]}).encode() for r in rows]

    modes = ["batching", "per-request"] + (["predict"] if args.predict_requests else [])
    runs = {mode: [] for mode in modes}
    for _ in range(args.repeats):
        for mode in modes:
            count = args.predict_requests if mode == "predict" else args.requests
            process, path, port = start_server(mode, model_path, "digits")
            try:
                wait_ready(port, path, bodies[0])
                load(port, path, bodies[:100], expected[:100], args.clients)  # warm-up
                cpu_before = cpu_seconds(process.pid)
                seconds, latencies, errors = load(port, path, bodies[:count], expected[:count],
                                                  args.clients)
                cpu_after = cpu_seconds(process.pid)
            finally:
                process.terminate()
                process.wait(timeout=30)
            runs[mode].append({
                "requests": count,
                "errors": len(errors),
                "first_errors": errors[:3],
                "requests_per_second": count / seconds,
                "p50_ms": 1000 * float(np.percentile(latencies, 50)),
                "p99_ms": 1000 * float(np.percentile(latencies, 99)),
                # Server CPU per request: what the server spends, even when a shared
                # machine's load makes requests/s noisy.
                "server_cpu_ms": (1000 * (cpu_after - cpu_before) / count
                                  if cpu_before is not None else float("nan")),
            })

    summary = {"clients": args.clients,
               "model": str(args.model or f"digits MLP {args.units} (trained here)")}
    for mode, results in runs.items():
        summary[mode] = {
            key: statistics.median(r[key] for r in results)
            for key in ("requests", "errors", "requests_per_second", "p50_ms", "p99_ms", "server_cpu_ms")
        }
        summary[mode]["first_errors"] = [e for r in results for e in r["first_errors"]][:3]
    rps = {mode: summary[mode]["requests_per_second"] for mode in modes}
    summary["speedup_vs_per_request"] = rps["batching"] / rps["per-request"]
    if "predict" in rps:
        summary["speedup_vs_model_predict"] = rps["batching"] / rps["predict"]
    summary["zero_errors"] = all(summary[mode]["errors"] == 0 for mode in modes)
    summary["target_met"] = summary["zero_errors"] and summary.get("speedup_vs_model_predict", 0) >= 3
    if args.json:
        print(json.dumps(summary))
        return
    print(f"{args.clients} concurrent clients, single-row :predict requests on 127.0.0.1, "
          f"median of {args.repeats}; model: {summary['model']}")
    for mode in modes:
        s = summary[mode]
        print(f"  {mode:12s} {s['requests']:5d} requests  {s['errors']} errors  "
              f"{s['requests_per_second']:7.1f} req/s  p50 {s['p50_ms']:6.1f} ms  p99 {s['p99_ms']:6.1f} ms  "
              f"server CPU {s['server_cpu_ms']:.2f} ms/request")
        for error in s["first_errors"]:
            print(f"      {error}")
    print(f"  micro-batching vs one compiled call per request: {summary['speedup_vs_per_request']:.2f}x")
    if "speedup_vs_model_predict" in summary:
        print(f"  micro-batching vs one model.predict per request: "
              f"{summary['speedup_vs_model_predict']:.2f}x (target >= 3x)")
    print("  target met" if summary["target_met"] else "  TARGET MISSED")


if __name__ == "__main__":
    main()
