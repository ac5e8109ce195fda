#!/usr/bin/env python3
"""The gateway and Kannel side by side, in one session, interleaved.

This machine's speed drifts by a third from minute to minute (two shared
vCPUs), so a comparison is only fair when both systems run close together
and often: each round runs Kannel's own benchmark
(../shared/bench/kannel/run.sh: MT with its file store at the given
concurrencies, and MO) and then this repository's bench/load.py on the
same paths and concurrencies, and the script prints the medians over all
rounds and the ratios gateway / Kannel.

  python3 bench/peer.py [--rounds 3] [--n 100000] [--conc 16,64] [--bin SPEC ...]

--bin takes bench/load.py's form (`PATH[+batch=N[+linger=MS]]`; default
target/release/gateway), repeatable: e.g. the same binary sending one
message per request and in batches, each its own row against the same
Kannel figures. Kannel cannot batch here: its fake SMSC takes one message
per line and its MO sms-service makes one HTTP GET per message.

Needs what both benchmarks need: ../shared/bench/kannel/setup.sh once (it
installs kannel, kannel-extras and wrk), and `cargo build --release`.
Kannel's MO figure is a backlog drain (fakesmsc injects every message at
once); the gateway's is a closed loop of signed webhook requests at the
given concurrency, so its MO line is compared at each concurrency with
Kannel's single MO figure.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KANNEL = os.path.join(ROOT, "..", "shared", "bench", "kannel", "run.sh")
LOAD = os.path.join(ROOT, "bench", "load.py")


def kv(line):
    out = {}
    for tok in line.split()[1:]:
        if "=" in tok:
            k, v = tok.split("=", 1)
            try:
                out[k] = float(v)
            except ValueError:
                out[k] = v
    return out


def kannel_round(n, conc):
    with tempfile.NamedTemporaryFile(suffix=".txt", delete=False) as f:
        results = f.name
    subprocess.run([KANNEL, "--stores", "file", "--conc", conc, "--n", str(n),
                    "--mo-n", str(n), "--results", results],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = []
    with open(results) as f:
        for line in f:
            if line.startswith("kannel path="):
                rows.append(kv(line))
    os.unlink(results)
    return rows


def gateway_round(n, conc, bins):
    cmd = [sys.executable, LOAD, "--path", "mt,mo", "--n", str(n), "--conc", conc]
    for b in bins:
        cmd += ["--bin", b]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [{"bin": 0.0} | kv(l) | {"path": l.split()[0].split("_")[1]} for l in out.splitlines()
            if l.startswith("gateway_mt ") or l.startswith("gateway_mo ")]


def med(rows, key):
    vals = [r[key] for r in rows if key in r]
    return statistics.median(vals) if vals else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n", type=int, default=100000)
    ap.add_argument("--conc", default="16,64")
    ap.add_argument("--bin", action="append", default=None,
                    help="gateway binary as bench/load.py takes it (repeatable)")
    a = ap.parse_args()
    bins = a.bin or [os.path.join(ROOT, "target", "release", "gateway")]
    kannel, gateway = [], []
    for r in range(a.rounds):
        kannel += kannel_round(a.n, a.conc)
        gateway += gateway_round(a.n, a.conc, bins)
        print(f"round {r + 1}/{a.rounds} done", flush=True)
    concs = [float(c) for c in a.conc.split(",")]
    print("| path | conc | gateway form | Kannel msg/s | gateway msg/s | ratio | Kannel p99 ms | gateway p99 ms "
          "| Kannel CPU µs/msg | gateway CPU µs/msg | CPU ratio | Kannel RSS MB | gateway RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for path in ("mt", "mo"):
        for c in concs:
            if path == "mt":
                k = [x for x in kannel if x.get("path") == "mt" and x.get("concurrency") == c]
                k_rate, k_p99 = med(k, "mt_delivered_per_s"), med(k, "p99_ms")
            else:
                k = [x for x in kannel if x.get("path") == "mo"]
                k_rate, k_p99 = med(k, "mo_delivered_per_s"), float("nan")
            for bi, spec in enumerate(bins):
                g = [x for x in gateway if x["path"] == path and x.get("conc") == c
                     and x.get("bin") == bi]
                form = spec.split("+", 1)[1] if "+" in spec else "single"
                g_rate = med(g, "e2e_per_s")
                k_cpu, g_cpu = med(k, "cpu_us_per_msg"), med(g, "cpu_us_per_msg")
                print(f"| {path} | {int(c)} | {form} | {k_rate:.0f} | {g_rate:.0f} | {g_rate / k_rate:.2f} "
                      f"| {k_p99:.1f} | {med(g, 'p99_ms'):.1f} | {k_cpu:.0f} | {g_cpu:.0f} "
                      f"| {g_cpu / k_cpu:.2f} | {med(k, 'rss_mb'):.0f} | {med(g, 'rss_mb'):.0f} |")
    print(f"# medians of {a.rounds} interleaved rounds; gateway msg/s counts a message once it is "
          "fsync-committed, sealed and delivered to the sink; Kannel's once fakesmsc / mo_sink got it")


if __name__ == "__main__":
    main()
