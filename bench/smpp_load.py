#!/usr/bin/env python3
"""Bounded load benchmark of the gateway's SMPP server: submit_sm with a window.

Starts `gateway sink --quiet` (the outbound SMSC stand-in) and `gateway serve`
from target/release on 127.0.0.1 with a fresh data directory per run and an
SMPP server on an ephemeral port, adds a server client with the CLI, binds
as a transmitter with a raw asyncio SMPP client (stdlib only, so the client
is not the bottleneck's unknown), and keeps W submit_sm outstanding until N
were answered (or the time cap). Every ESME_ROK means the message was
normalised, spam-checked, sealed and fsync-committed. Prints per run:

  smpp window=W n=N ok=.. throttled=.. msgs_per_s=.. p50_ms=.. p99_ms=..

and the medians over runs. Usage:
  python3 bench/smpp_load.py [--n 20000] [--window 1,10,64] [--runs 3]
"""
import argparse
import asyncio
import os
import shutil
import socket
import statistics
import struct
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GW = os.path.join(ROOT, "target", "release", "gateway")
SECRET = "bench-secret"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open")


def pdu(cmd, seq, body=b""):
    return struct.pack(">IIII", 16 + len(body), cmd, 0, seq) + body


def submit_body(i):
    text = b"Benchmark message number %d over SMPP" % i
    return (b"\0" + bytes([1, 1]) + b"14155550199\0" + bytes([1, 1]) + b"1415555%04d\0" % (i % 10000)
            + bytes([0, 0, 0]) + b"\0\0" + bytes([0, 0, 0, 0]) + bytes([len(text)]) + text)


async def drive(port, system_id, password, n, window, max_s):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    bind = system_id.encode() + b"\0" + password.encode() + b"\0" + b"\0" + bytes([0x34, 0, 0]) + b"\0"
    w.write(pdu(0x02, 1, bind))
    await w.drain()
    hdr = await r.readexactly(16)
    length, cmd, status, _ = struct.unpack(">IIII", hdr)
    await r.readexactly(length - 16)
    if status != 0:
        raise RuntimeError(f"bind refused: {status:#x}")
    sent_at = {}
    lat = []
    counts = {"ok": 0, "throttled": 0, "other": 0}
    slots = asyncio.Semaphore(window)
    done = asyncio.Event()
    t0 = time.perf_counter()
    deadline = t0 + max_s

    async def reader():
        while counts["ok"] + counts["throttled"] + counts["other"] < n:
            hdr = await r.readexactly(16)
            length, cmd, status, seq = struct.unpack(">IIII", hdr)
            if length > 16:
                await r.readexactly(length - 16)
            if cmd == 0x80000004:
                lat.append(time.perf_counter() - sent_at.pop(seq))
                key = "ok" if status == 0 else "throttled" if status == 0x58 else "other"
                counts[key] += 1
                slots.release()
            elif cmd == 0x15:
                w.write(struct.pack(">IIII", 16, 0x80000015, 0, seq))
        done.set()

    rt = asyncio.create_task(reader())
    for i in range(n):
        await slots.acquire()
        if time.perf_counter() > deadline:
            break
        seq = i + 2
        sent_at[seq] = time.perf_counter()
        w.write(pdu(0x04, seq, submit_body(i)))
        if i % 32 == 0:
            await w.drain()
    await w.drain()
    try:
        await asyncio.wait_for(done.wait(), timeout=max(1.0, deadline - time.perf_counter() + 10))
    except asyncio.TimeoutError:
        pass
    elapsed = time.perf_counter() - t0
    rt.cancel()
    w.close()
    lat.sort()
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else float("nan")
    answered = counts["ok"] + counts["throttled"] + counts["other"]
    return {"ok": counts["ok"], "throttled": counts["throttled"], "other": counts["other"],
            "msgs_per_s": counts["ok"] / elapsed, "answered": answered,
            "p50_ms": q(0.50), "p99_ms": q(0.99), "elapsed_s": elapsed}


def run_once(n, window, max_s):
    work = tempfile.mkdtemp(prefix="gw-smpp-bench-")
    env = dict(os.environ, GATEWAY_GENERIC_SECRET=SECRET, RUST_LOG="warn")
    sink_port, gw_port, smpp_port = free_port(), free_port(), free_port()
    cfg = os.path.join(work, "gateway.toml")
    with open(cfg, "w") as f:
        f.write(f'listen = "127.0.0.1:{gw_port}"\nadmin.listen = "127.0.0.1:{free_port()}"\n'
                f'data_dir = "{work}/data"\n'
                f'[generic]\nurl = "http://127.0.0.1:{sink_port}/sms"\nfrom = "+14155550199"\n'
                f'[smpp.server]\nlisten = "127.0.0.1:{smpp_port}"\nwindow = {max(window, 1)}\n'
                'throughput = 1000000.0\n'
                # As in bench/load.py: the classifier and rate limiter run on
                # every message, the one sender is allow-listed, limits raised.
                '[classifier]\nallow = ["+14155550199"]\n'
                '[classifier.rate_limits]\n'
                'long_code = { per_second = 1000000.0, burst = 1000000 }\n'
                'recipient = { per_second = 1000000.0, burst = 1000000 }\n'
                'pair = { per_second = 1000000.0, burst = 1000000 }\n'
                'route = { per_second = 1000000.0, burst = 1000000 }\n')
    sink = subprocess.Popen([GW, "sink", "--quiet", "--listen", f"127.0.0.1:{sink_port}"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    password = subprocess.run([GW, "--config", cfg, "smpp", "client", "add", "bench",
                               "--throughput", "1000000"], env=env, capture_output=True,
                              text=True, check=True).stdout.strip()
    gw = subprocess.Popen([GW, "--config", cfg, "serve"], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(sink_port)
        wait_port(smpp_port)
        return asyncio.run(drive(smpp_port, "bench", password, n, window, max_s))
    finally:
        for p in (gw, sink):
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--window", default="1,10,64")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--max-seconds", type=float, default=60.0)
    a = ap.parse_args()
    for window in [int(x) for x in a.window.split(",")]:
        rows = []
        for _ in range(a.runs):
            r = run_once(a.n, window, a.max_seconds)
            rows.append(r)
            print(f"smpp window={window} n={a.n} ok={r['ok']} throttled={r['throttled']} "
                  f"other={r['other']} msgs_per_s={r['msgs_per_s']:.0f} p50_ms={r['p50_ms']:.2f} "
                  f"p99_ms={r['p99_ms']:.2f}", flush=True)
        med = lambda k: statistics.median(x[k] for x in rows)
        print(f"MEDIAN smpp window={window} msgs_per_s={med('msgs_per_s'):.0f} "
              f"p50_ms={med('p50_ms'):.2f} p99_ms={med('p99_ms'):.2f}", flush=True)


if __name__ == "__main__":
    main()
