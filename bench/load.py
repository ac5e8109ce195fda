#!/usr/bin/env python3
"""Bounded load benchmarks of the gateway's two message paths, shaped like
the Kannel peer benchmark in ../shared/bench/kannel so the figures sit side
by side:

  mt  POST /v1/messages (API key)  -> seal, rate limit + classify, durable
      commit, 202 -> delivery to the generic SMSC (`gateway sink`)
  mo  POST /webhooks/generic (HMAC-signed, distinct carrier ids) -> seal to
      the private side's key, rate limit + classify, durable commit, 200 ->
      signed delivery of the envelope to the private side (`gateway sink`)

Each phase starts `gateway sink --quiet` and `gateway serve` from
target/release on 127.0.0.1 with a fresh data directory, drives the gateway
with wrk (1 thread, C keep-alive connections, a fixed number of requests,
closed loop), waits until the delivery queue is empty, and prints one line:

  gateway_mt conc=64 n=100000 accepted_per_s=... p50_ms=... p99_ms=...
             rss_mb=... cpu_us_per_msg=... e2e_per_s=... drain_s=... sync=full

accepted_per_s: 2xx answers / HTTP window; e2e_per_s: accepted messages /
(first request -> queue empty), i.e. every message also delivered;
cpu_us_per_msg: the gateway process's CPU (user + system) from the first
request to the end of delivery, per message. Every accepted message is
fsync-durable (synchronous=full) and sealed with HPKE before its 2xx.

  python3 bench/load.py [--path mt,mo] [--n 100000] [--conc 1,16,64] [--runs 1]
                        [--sync full|normal] [--bin A --bin B ...]

With several --bin the phases interleave binaries, so an A/B comparison
shares the machine's noise. `--bin PATH+batch=N[+linger=MS]` runs that
binary with the batch form on both delivery paths (`batch_max = N`,
`batch_linger_ms = MS`); the first --bin is also the sink, so put a
binary whose sink speaks the batch form first. Stdlib only; needs wrk (apt-get install wrk).
BENCH_METRICS=FILE appends the gateway's /metrics after each phase;
BENCH_EXTRA_TOML appends configuration (`\n` for line breaks).
"""
import argparse
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# GATEWAY_BIN: another build to measure (e.g. a copy of the previous one).
GW = os.environ.get("GATEWAY_BIN") or os.path.join(ROOT, "target", "release", "gateway")
LUA = {"mt": os.path.join(ROOT, "bench", "send.lua"),
       "mo": os.path.join(ROOT, "bench", "inbound.lua")}
SECRET = "bench-secret"
PRIVATE_SECRET = "bench-private-secret"
BIG = "{ per_second = 1000000.0, burst = 1000000 }"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def proc_cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tck = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tck


def proc_hwm_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def wait_port(port, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open")


def admin_line(gw_bin, work, port):
    """`admin.listen` on a free port for binaries with an admin plane (the
    issue-17 split: /metrics moved there); empty for older ones, which
    refuse the key and serve /metrics on the public port."""
    probe = os.path.join(work, "probe.toml")
    line = f'admin.listen = "127.0.0.1:{port}"\n'
    with open(probe, "w") as f:
        f.write(line + f'data_dir = "{work}/probe"\n')
    r = subprocess.run([gw_bin, "--config", probe, "keys", "api", "list"], capture_output=True)
    return line if r.returncode == 0 else ""


def split_bin(spec):
    """`PATH[+batch=N[+linger=MS]]` -> (PATH, N, MS)."""
    path, *opts = spec.split("+")
    kv = dict(o.split("=", 1) for o in opts)
    return path, int(kv.get("batch", 1)), int(kv.get("linger", 0))


def config(work, gw_port, sink_port, sync, service_key, admin="", batch=1, linger=0):
    # Older binaries refuse the batch keys: written only when asked for.
    b = f"batch_max = {batch}\nbatch_linger_ms = {linger}\n" if batch > 1 else ""
    # The classifier and rate limiter still run on every message; the bench
    # senders are allow-listed and their limits raised so that the figures
    # measure the pipeline, not the policy.
    return (f'listen = "127.0.0.1:{gw_port}"\ndata_dir = "{work}/data"\n' + admin +
            f'[store]\nsynchronous = "{sync}"\n'
            f'[http]\nmax_in_flight = 65536\n'
            f'[delivery]\nconcurrency = {os.environ.get("BENCH_DELIVERY_CONC", "128")}\n'
            f'[generic]\nurl = "http://127.0.0.1:{sink_port}/sms"\nfrom = "+14155550199"\n' + b +
            f'[private_side]\nwebhook_url = "http://127.0.0.1:{sink_port}/private"\n' + b +
            f'service_public_key = "{service_key}"\n'
            '[classifier]\nallow = ["+14155550199", "+1415*"]\n'
            '[classifier.rate_limits]\n'
            f'long_code = {BIG}\nrecipient = {BIG}\npair = {BIG}\nroute = {BIG}\n'
            # Experiments: more configuration, appended as it is.
            + os.environ.get("BENCH_EXTRA_TOML", "").replace("\\n", "\n"))


def prepare_inbound(path, count):
    """Signed generic-webhook requests, one per line: distinct carrier ids,
    1000 senders, one internal recipient (as Kannel's MO bench has)."""
    t = str(int(time.time()))
    with open(path, "w") as f:
        for i in range(count):
            body = json.dumps({"id": f"mo-{i}", "from": f"+1415{200 + (i // 1000) % 700:03d}{i % 1000:04d}",
                               "to": "+14155550100", "text": f"bench message {i}"},
                              separators=(",", ":"))
            mac = hmac.new(SECRET.encode(), f"{t}.{body}".encode(), hashlib.sha256).hexdigest()
            f.write(f"t={t},v1={mac}\t{body}\n")


def queue_len(db):
    r = subprocess.run(["python3", "-c",
                        "import sqlite3,sys;c=sqlite3.connect(sys.argv[1]);"
                        "print(c.execute('select count(*) from queue').fetchone()[0])", db],
                       capture_output=True, text=True)
    try:
        return int(r.stdout.strip())
    except ValueError:
        return -1


def phase(path, conc, n, sync, max_s, gw_spec, sink_bin):
    gw_bin, batch, linger = split_bin(gw_spec)
    work = tempfile.mkdtemp(prefix="gw-bench-")
    env = dict(os.environ, GATEWAY_GENERIC_SECRET=SECRET, GATEWAY_PRIVATE_SECRET=PRIVATE_SECRET,
               RUST_LOG="warn")
    sink_port, gw_port = free_port(), free_port()
    keypair = json.loads(subprocess.run([gw_bin, "envelope", "keygen"], capture_output=True,
                                        text=True, check=True).stdout)
    cfg = os.path.join(work, "gateway.toml")
    with open(cfg, "w") as f:
        admin_port = free_port()
        admin = admin_line(gw_bin, work, admin_port)
        f.write(config(work, gw_port, sink_port, sync, keypair["public_key"], admin, batch, linger))
    metrics_port = admin_port if admin else gw_port
    sink = subprocess.Popen([sink_bin, "sink", "--quiet", "--listen", f"127.0.0.1:{sink_port}"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    token = subprocess.run([gw_bin, "--config", cfg, "keys", "api", "create", "bench"], env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    if path == "mo":
        arg = os.path.join(work, "requests.txt")
        prepare_inbound(arg, n + conc)
    else:
        arg = token
    gw = subprocess.Popen([gw_bin, "--config", cfg, "serve"], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(sink_port)
        wait_port(gw_port)
        cpu0 = proc_cpu_s(gw.pid)
        done = os.path.join(work, "wrk.done.")
        t_start = time.time()
        wrk = subprocess.Popen(["wrk", "-t1", f"-c{conc}", f"-d{max_s}s", "--timeout", "10s", "-s",
                                LUA[path], f"http://127.0.0.1:{gw_port}", "--", str(n), done, arg],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        end = time.time() + max_s + 5
        while time.time() < end and wrk.poll() is None:
            if os.path.exists(done + "1"):
                break
            time.sleep(0.05)
        if wrk.poll() is None:
            wrk.send_signal(signal.SIGINT)
        out = wrk.communicate(timeout=30)[0]
        t_http = time.time()
        figures = {}
        for line in out.splitlines():
            if line.startswith("WRK "):
                for kv in line[4:].split():
                    k, v = kv.split("=")
                    figures[k] = float(v)
        if "accepted" not in figures:
            raise RuntimeError("wrk failed: " + out)
        # Wait for delivery to drain (every accepted message handed on).
        db = os.path.join(work, "data", "gateway.db")
        drain_end = time.time() + 120
        queued = -1
        while time.time() < drain_end:
            queued = queue_len(db)
            if queued == 0:
                break
            time.sleep(0.1)
        t_drain = time.time()
        cpu = proc_cpu_s(gw.pid) - cpu0
        rss = proc_hwm_mb(gw.pid)
        if os.environ.get("BENCH_METRICS"):
            # Keep the gateway's own view (commit batch sizes, latencies) of the phase.
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as r:
                with open(os.environ["BENCH_METRICS"], "a") as f:
                    f.write(f"# phase path={path} conc={conc} bin={gw_bin}\n" + r.read().decode())
        acc = figures["accepted"]
        return {
            "conc": conc, "n": n, "sync": sync,
            "accepted": int(acc),
            "accepted_per_s": round(acc / figures["window_s"], 1) if figures["window_s"] else 0,
            "e2e_per_s": round(acc / (t_drain - t_start), 1) if queued == 0 else 0,
            "p50_ms": figures["p50_us"] / 1000, "p99_ms": figures["p99_us"] / 1000,
            "p999_ms": figures["p999_us"] / 1000, "errors": int(figures["errors"]),
            "other": int(figures["other"]),
            "rss_mb": round(rss, 1),
            "cpu_us_per_msg": round(cpu * 1e6 / acc, 1) if acc else 0,
            "drain_s": round(t_drain - t_http, 2), "left_in_queue": queued,
        }
    finally:
        gw.send_signal(signal.SIGTERM)
        try:
            gw.wait(timeout=30)
        except subprocess.TimeoutExpired:
            gw.kill()
        sink.send_signal(signal.SIGINT)
        try:
            err = sink.communicate(timeout=10)[1] or ""
            # "sink received R requests (M messages in batches)": how full batches were.
            for line in err.splitlines():
                if line.startswith("sink received"):
                    print("# " + line, file=sys.stderr, flush=True)
        except subprocess.TimeoutExpired:
            sink.kill()
        shutil.rmtree(work, ignore_errors=True)


MEDIAN_KEYS = ("accepted_per_s", "e2e_per_s", "p50_ms", "p99_ms", "rss_mb", "cpu_us_per_msg")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--path", default="mt", help="mt, mo or mt,mo")
    ap.add_argument("--n", type=int, default=100000)
    ap.add_argument("--conc", default="1,16,64")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--sync", default="full", choices=["full", "normal"])
    ap.add_argument("--max-seconds", type=int, default=60)
    ap.add_argument("--bin", action="append", default=None,
                    help="gateway binary to measure (repeat to compare binaries in one run, interleaved)")
    a = ap.parse_args()
    bins = a.bin or [GW]
    for b in bins:
        if not os.path.exists(split_bin(b)[0]):
            sys.exit(f"build first: cargo build --release ({b} is missing)")
    if not shutil.which("wrk"):
        sys.exit("needs wrk: apt-get install wrk")
    paths = [p for p in a.path.split(",") if p]
    if any(p not in LUA for p in paths):
        sys.exit("--path takes mt, mo or both")
    results = {}
    for _ in range(a.runs):
        for path in paths:
            for c in [int(x) for x in a.conc.split(",")]:
                for bi, b in enumerate(bins):
                    # One sink binary for every phase, so only the gateway differs.
                    r = phase(path, c, a.n, a.sync, a.max_seconds, b, split_bin(bins[0])[0])
                    results.setdefault((path, bi, c), []).append(r)
                    tag = f" bin={bi}" if len(bins) > 1 else ""
                    print(f"gateway_{path}{tag} " + " ".join(f"{k}={v}" for k, v in r.items()), flush=True)
    if a.runs > 1:
        for (path, bi, c), rs in results.items():
            med = {k: statistics.median(r[k] for r in rs) for k in MEDIAN_KEYS}
            tag = f" bin={bi}" if len(bins) > 1 else ""
            print(f"gateway_{path}_median{tag} conc={c} runs={len(rs)} "
                  + " ".join(f"{k}={v}" for k, v in med.items()))


if __name__ == "__main__":
    main()
