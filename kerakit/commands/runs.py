"""`kerakit runs`: list past runs with their data, status and key metric.

STATUS is running, completed, failed or interrupted as recorded, or what the
listing finds: killed (a running run whose process is gone), stale (running
on another host, started long ago), incomplete (a run folder without a
manifest), unreadable, or damaged (a manifest whose fields have the wrong type).
"""

import json

from kerakit.commands.arguments import positive_int


def add_arguments(parser):
    parser.add_argument("--runs-dir", metavar="DIR", default=None,
                        help="root of run directories (default: $KERAKIT_RUNS_DIR or ./runs)")
    parser.add_argument("--recipe", metavar="NAME", default=None, help="only runs of this recipe")
    parser.add_argument("--last", metavar="N", type=positive_int, default=None,
                        help="only the N most recent runs")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def _metric_text(manifest):
    from kerakit.runs import key_metric

    name, value = key_metric(manifest)
    return f"{name} {value:.4f}" if name is not None else "-"


def run(args):
    from kerakit.runs import data_label, list_runs, runs_dir

    found = list_runs(args.runs_dir, recipe=args.recipe)
    if args.last is not None:
        found = found[-args.last:]
    if args.json:
        rows = [{**{k: m.get(k) for k in ("recipe", "id", "status", "started", "ended", "metrics",
                                          "key_metric", "dir")},
                 "data": {k: (m.get("data") or {}).get(k) for k in ("source", "target")},
                 "warnings": m.get("warnings") or [],
                 **({"damage": m["damage"]} if "damage" in m else {})} for m in found]
        print(json.dumps(rows, indent=2))
        return 0
    if not found:
        print(f"No runs under {runs_dir(args.runs_dir)}. Start one with `kerakit run digits`.")
        return 0
    rows = [(f"{m.get('recipe', '?')}/{m.get('id', '?')}", data_label(m) or "-",
             m.get("status", "?"), _metric_text(m) + (" (!)" if m.get("warnings") else ""),
             str(m.get("started", ""))[:19].replace("T", " "), m["dir"]) for m in found]
    header = ("RUN", "DATA", "STATUS", "KEY METRIC", "STARTED", "DIRECTORY")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(5)]
    for row in [header, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(row[:5], widths, strict=True)) + "  " + row[5])
    if any(m.get("warnings") for m in found):
        print("(!) the test split was too small to measure; see the run's manifest.json warnings.")
    for m in found:
        if m.get("status") == "damaged":
            print(f"damaged: {m['dir']}/manifest.json: {m['damage']}.")
    return 0
