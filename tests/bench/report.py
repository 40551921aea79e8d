"""Turns scripts/bench's raw figures into results.json, results.md and a gnuplot script.

usage: report.py RAW_JSONL OUT_DIR MACHINE
"""
import datetime
import json
import sys

raw_path, out_dir, machine = sys.argv[1], sys.argv[2], sys.argv[3]
rows = [json.loads(line) for line in open(raw_path) if line.strip()]
by = {}
for row in rows:
    by.setdefault(row["workload"], {})[row["target"]] = row
workloads = list(dict.fromkeys(row["workload"] for row in rows))


def fig(workload, target, key):
    entry = by.get(workload, {}).get(target)
    return entry["figures"][key] if entry else None


def ratio(a, b):
    return a / b if a and b else None


def fmt(value, digits=0):
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


date = datetime.date.today().isoformat()
lines = [
    f"Benchmark of {date} on {machine}. Requests per second and latency (p50/p99, ms) over "
    "loopback HTTP with keep-alive; peak RSS of the serving process during the workload. "
    "Ratios matter, not absolute figures.",
    "",
    "| workload | C++ req/s | TS req/s | C++/TS | bound req/s | C++/bound | C++ p50 | TS p50 | "
    "bound p50 | C++ p99 | TS p99 | C++ RSS MiB | TS RSS MiB |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
]
for w in workloads:
    cpp_rps, ts_rps, bare_rps = (fig(w, t, "rps") for t in ("cpp", "ts", "bare"))
    p50 = {t: (fig(w, t, "p50_us") or 0) / 1000 for t in ("cpp", "ts", "bare")}
    p99 = {t: (fig(w, t, "p99_us") or 0) / 1000 for t in ("cpp", "ts")}
    rss = {t: by[w][t]["rss_kib"] / 1024 if t in by[w] else None for t in ("cpp", "ts")}
    lines.append(
        f"| {w} | {fmt(cpp_rps)} | {fmt(ts_rps)} | {fmt(ratio(cpp_rps, ts_rps), 1)}x | "
        f"{fmt(bare_rps)} | {fmt(ratio(cpp_rps, bare_rps), 2)} | {fmt(p50['cpp'], 2)} | "
        f"{fmt(p50['ts'], 2)} | {fmt(p50['bare'], 2)} | {fmt(p99['cpp'], 2)} | "
        f"{fmt(p99['ts'], 2)} | {fmt(rss['cpp'], 1)} | {fmt(rss['ts'], 1)} |"
    )

# The targets, each checked against this run.
checks = []
for n in (10, 100, 1000, 10000):
    w = f"replay-{n}"
    cpp, bare, ts = fig(w, "cpp", "p50_us"), fig(w, "bare", "p50_us"), fig(w, "ts", "p50_us")
    if cpp and bare:
        checks.append((f"replay N={n}: C++ p50 within 2x the bound's", cpp <= 2 * bare,
                       f"{cpp / bare:.2f}x"))
    if n >= 100 and cpp and ts:
        checks.append((f"replay N={n}: C++ p50 at least 10x faster than TS", ts >= 10 * cpp,
                       f"{ts / cpp:.1f}x"))
cpp, ts, bare = (fig("first-step", t, "rps") for t in ("cpp", "ts", "bare"))
if cpp and ts:
    checks.append(("first step: C++ throughput at least 5x TS", cpp >= 5 * ts, f"{cpp / ts:.1f}x"))
if cpp and bare:
    checks.append(("first step: C++ throughput within 2x the bound", cpp >= bare / 2,
                   f"{cpp / bare:.2f} of the bound"))
for w in ("large-1mib", "large-10mib"):
    cpp, bare = fig(w, "cpp", "rps"), fig(w, "bare", "rps")
    if cpp and bare:
        checks.append((f"{w}: C++ throughput at or above the bound's", cpp >= bare,
                       f"{cpp / bare:.2f} of the bound"))
if "large-10mib" in by and "cpp" in by["large-10mib"]:
    peak = by["large-10mib"]["cpp"]["rss_kib"] / 1024
    checks.append(("large-10mib: C++ peak RSS under 4x the state (40 MiB)", peak < 40,
                   f"{peak:.1f} MiB"))
lines += ["", "| target | met | measured |", "|---|---|---|"]
lines += [f"| {name} | {'yes' if ok else '**no**'} | {measured} |" for name, ok, measured in checks]

open(f"{out_dir}/results.md", "w").write("\n".join(lines) + "\n")
json.dump({"date": date, "machine": machine, "runs": rows,
           "targets": [{"target": n, "met": ok, "measured": m} for n, ok, m in checks]},
          open(f"{out_dir}/results.json", "w"), indent=1)

with open(f"{out_dir}/replay.dat", "w") as data:
    data.write("# N cpp_p50_ms ts_p50_ms bound_p50_ms\n")
    for n in (10, 100, 1000, 10000):
        w = f"replay-{n}"
        values = [(fig(w, t, "p50_us") or 0) / 1000 for t in ("cpp", "ts", "bare")]
        data.write(f"{n} {values[0]} {values[1]} {values[2]}\n")
with open(f"{out_dir}/replay.gp", "w") as gp:
    gp.write(f"""set terminal pngcairo size 900,560 noenhanced
set output '{out_dir}/replay.png'
set title 'Replay of N memoized steps: p50 latency per call ({date})'
set xlabel 'N memoized steps'
set ylabel 'p50 latency (ms)'
set logscale xy
set grid
set key left top
plot '{out_dir}/replay.dat' using 1:2 with linespoints lw 2 title 'inngest-cpp', \\
     '' using 1:3 with linespoints lw 2 title 'TypeScript SDK (inngest on node:http)', \\
     '' using 1:4 with linespoints lw 2 dt 2 title 'bare Beast + Boost.JSON bound'
""")
