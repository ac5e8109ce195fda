#!/usr/bin/env python3
"""Scale-out benchmark (issue 19): the same bounded MT load on

  sqlite    one node on SQLite (synchronous=full), the embedded default
  pg1       one node on PostgreSQL
  pg2       two nodes on the same PostgreSQL, the load split over both

each on this one machine, with its own PostgreSQL started for the run
(initdb into a temporary directory, an ephemeral port on 127.0.0.1, fsync
on: a 202 is as durable as on SQLite), the release binary, `gateway sink`
as the SMSC, and wrk driving POST /v1/messages (bench/send.lua, as
bench/load.py does). Each phase sends N messages, waits until the queue is
empty (every message also delivered) and prints one line:

  cluster setup=pg2 n=... conc=... accepted_per_s=... e2e_per_s=...
          p50_ms=... p99_ms=... gw_cpu_us_per_msg=... pg_cpu_us_per_msg=...

gw_cpu: the gateway processes' CPU (user + system, /proc/PID/stat) from the
first request to the empty queue; pg_cpu: the PostgreSQL server's (the
postmaster, its live backends and the children it reaped), per accepted
message. Both sides share the machine's cores, so msgs/s is bounded by
their sum: read the CPU per message for where the time goes.

  python3 bench/cluster.py [--n 5000] [--conc 32] [--setups sqlite,pg1,pg2]
                           [--statements] [--pg-max-batch N]

--statements (PostgreSQL setups) loads pg_stat_statements into the
bench's own server and prints, per accepted message, the transactions
committed, the WAL flushes and each statement's calls: where the
server's CPU goes (the extension costs some CPU itself: compare msgs/s
without it). GATEWAY_BIN=path measures another build (e.g. a copy of
the previous one, to compare before and after in one session).

Stdlib only; needs wrk and Debian's postgresql package (server binaries in
/usr/lib/postgresql/*/bin). As root, PostgreSQL runs as `postgres`.
"""
import argparse
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import load  # noqa: E402  (free_port, proc_cpu_s, wait_port, config, LUA)

ROOT = load.ROOT
GW = load.GW
PG_USER = "gw"
PG_PASSWORD = "bench-pg-password"


def pg_bindir():
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(d, "initdb")):
            return d
    raise SystemExit("PostgreSQL server binaries not found (apt-get install postgresql)")


class Postgres:
    """A throwaway server: initdb + pg_ctl start; stop() removes it."""

    def __init__(self, statements=False):
        self.statements = statements
        self.bindir = pg_bindir()
        self.dir = tempfile.mkdtemp(prefix="gw-bench-pg-")
        self.root = os.geteuid() == 0
        pw = os.path.join(self.dir, "pw")
        with open(pw, "w") as f:
            f.write(PG_PASSWORD)
        if self.root:
            subprocess.run(["chown", "-R", "postgres:", self.dir], check=True)
        self.data = os.path.join(self.dir, "data")
        self.run("initdb", "-D", self.data, "-U", PG_USER, "--pwfile", pw,
                 "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--no-sync")
        self.port = load.free_port()
        opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                "-c max_connections=200 -c shared_buffers=256MB")
        if statements:
            opts += " -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.max=1000"
        self.run("pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "log"), "-o", opts,
                 "-w", "-t", "60", "start")
        self.pw_file = pw
        if statements:
            self.sql("postgres", "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")

    def reset_stats(self, db):
        self.sql(db, "SELECT pg_stat_reset()")
        self.sql("postgres", "SELECT pg_stat_statements_reset()")
        self.sql("postgres", "SELECT pg_stat_reset_shared('wal')")

    def statement_stats(self, db, acc):
        """Per accepted message: commits, WAL flushes, and each statement's
        calls (the bench's own queue polling left out). Read once the
        gateways have exited, so their backends have flushed their counts."""
        time.sleep(1.0)
        poll = "SELECT COUNT(*) FROM queue"
        polls = self.sql("postgres", "SELECT COALESCE(SUM(calls), 0) FROM pg_stat_statements s "
                         f"JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = '{db}' "
                         f"AND s.query = '{poll}'")
        commits = self.sql("postgres", f"SELECT xact_commit FROM pg_stat_database WHERE datname = '{db}'")
        wal = self.sql("postgres", "SELECT wal_sync || ' ' || wal_records || ' ' || wal_bytes FROM pg_stat_wal")
        rows = self.sql("postgres", "SELECT s.calls, round(s.total_exec_time::numeric, 1), "
                        "regexp_replace(left(s.query, 110), '\\s+', ' ', 'g') FROM pg_stat_statements s "
                        f"JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = '{db}' "
                        f"AND s.query <> '{poll}' ORDER BY s.calls DESC LIMIT 40")
        polls = int(polls or 0)
        out = {"commits_per_msg": round((int(commits or 0) - polls) / acc, 2) if acc else 0}
        if wal:
            sync, records, nbytes = (int(x) for x in wal.split())
            out.update(wal_flushes_per_msg=round(sync / acc, 3), wal_records_per_msg=round(records / acc, 1),
                       wal_bytes_per_msg=round(nbytes / acc))
        total = 0
        lines = []
        for line in (rows or "").splitlines():
            calls, ms, q = line.split("|", 2)
            total += int(calls)
            lines.append(f"  {int(calls) / acc:7.3f}/msg {float(ms) / acc * 1000:8.1f} us/msg  {q}")
        out["statements_per_msg"] = round(total / acc, 2) if acc else 0
        return out, lines

    def run(self, tool, *args):
        cmd = [os.path.join(self.bindir, tool), *args]
        if self.root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def sql(self, db, q):
        env = dict(os.environ, PGPASSWORD=PG_PASSWORD)
        r = subprocess.run([os.path.join(self.bindir, "psql"), "-h", "127.0.0.1", "-p", str(self.port),
                            "-U", PG_USER, "-d", db, "-tAc", q], env=env, capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else None

    def create_db(self, name):
        self.sql("postgres", f"CREATE DATABASE {name}")
        return f"postgres://{PG_USER}@127.0.0.1:{self.port}/{name}"

    def cpu_s(self):
        """CPU of the postmaster, its children, and the children it reaped."""
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            master = int(f.readline())
        tck = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for stat in glob.glob("/proc/[0-9]*/stat"):
            try:
                with open(stat) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            pid = int(stat.split("/")[2])
            if pid == master:
                total += sum(int(x) for x in fields[11:15]) / tck
            elif int(fields[1]) == master:
                total += (int(fields[11]) + int(fields[12])) / tck
        return total

    def stop(self):
        try:
            self.run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def node_config(work, gw_port, sink_port, key, store):
    admin = f'admin.listen = "127.0.0.1:{load.free_port()}"\n'
    cfg = load.config(work, gw_port, sink_port, "full", key, admin)
    if store:
        cfg = cfg.replace('[store]\nsynchronous = "full"\n', store)
    return cfg


def phase(setup, n, conc, max_s, pg, max_batch=None):
    stats = {}
    r = _phase(setup, n, conc, max_s, pg, stats, max_batch)
    if "db" in stats and r["accepted"]:
        figures, lines = pg.statement_stats(stats["db"], r["accepted"])
        r.update(figures)
        print(f"statements setup={setup} (calls and server time per accepted message, busiest first):")
        print("\n".join(lines), flush=True)
    return r


def _phase(setup, n, conc, max_s, pg, stats, max_batch):
    work = tempfile.mkdtemp(prefix="gw-bench-cluster-")
    env = dict(os.environ, GATEWAY_GENERIC_SECRET=load.SECRET,
               GATEWAY_PRIVATE_SECRET=load.PRIVATE_SECRET, RUST_LOG="warn")
    nodes = 2 if setup == "pg2" else 1
    store = ""
    if setup != "sqlite":
        url = pg.create_db(f"bench_{setup}_{int(time.time())}")
        store = (f'[store]\nbackend = "postgres"\nurl = "{url}"\nsecret_file = "{pg.pw_file}"\n'
                 f'pool_size = 16\n')
        if max_batch:
            store += f"max_batch = {max_batch}\n"
    key = json.loads(subprocess.run([GW, "envelope", "keygen"], capture_output=True, text=True,
                                    check=True).stdout)["public_key"]
    sink_port = load.free_port()
    sink = subprocess.Popen([GW, "sink", "--quiet", "--listen", f"127.0.0.1:{sink_port}"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    gws, ports, cfgs = [], [], []
    try:
        for i in range(nodes):
            d = os.path.join(work, f"node{i}")
            os.makedirs(d)
            port = load.free_port()
            cfg = os.path.join(d, "gateway.toml")
            with open(cfg, "w") as f:
                f.write(node_config(d, port, sink_port, key, store))
            ports.append(port)
            cfgs.append(cfg)
        token = subprocess.run([GW, "--config", cfgs[0], "keys", "api", "create", "bench"], env=env,
                               capture_output=True, text=True, check=True).stdout.strip()
        for i, cfg in enumerate(cfgs):
            if i > 0:
                # every node opens what any node sealed: the same edge keys
                shutil.copytree(os.path.join(work, "node0", "data", "keys"),
                                os.path.join(work, f"node{i}", "data", "keys"))
                shutil.copy(os.path.join(work, "node0", "data", "pseudonym.key"),
                            os.path.join(work, f"node{i}", "data", "pseudonym.key"))
            log = open(os.path.join(work, f"node{i}.log"), "w")
            gws.append(subprocess.Popen([GW, "--config", cfg, "serve"], env=env,
                                        stdout=subprocess.DEVNULL, stderr=log))
            try:
                load.wait_port(ports[i])
            except RuntimeError:
                with open(os.path.join(work, f"node{i}.log")) as f:
                    sys.stderr.write(f.read()[-2000:])
                raise
        load.wait_port(sink_port)
        gw_cpu0 = sum(load.proc_cpu_s(g.pid) for g in gws)
        pg_cpu0 = pg.cpu_s() if store else 0.0
        if store and pg.statements:
            stats["db"] = url.rsplit("/", 1)[1]
            pg.reset_stats(stats["db"])
        t0 = time.time()
        wrks = []
        for i, port in enumerate(ports):
            done = os.path.join(work, f"wrk{i}.done.")
            wrks.append((done, subprocess.Popen(
                ["wrk", "-t1", f"-c{max(1, conc // nodes)}", f"-d{max_s}s", "--timeout", "10s", "-s",
                 load.LUA["mt"], f"http://127.0.0.1:{port}", "--", str(n // nodes), done, token],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
        end = time.time() + max_s + 5
        figures = []
        for done, w in wrks:
            while time.time() < end and w.poll() is None and not os.path.exists(done + "1"):
                time.sleep(0.05)
            if w.poll() is None:
                w.send_signal(signal.SIGINT)
            out = w.communicate(timeout=30)[0]
            f = {}
            for line in out.splitlines():
                if line.startswith("WRK "):
                    for kv in line[4:].split():
                        k, v = kv.split("=")
                        f[k] = float(v)
            if "accepted" not in f:
                raise RuntimeError("wrk failed: " + out)
            figures.append(f)
        queued, drain_end = -1, time.time() + 180
        while time.time() < drain_end:
            if store:
                q = pg.sql(url.rsplit("/", 1)[1], "SELECT COUNT(*) FROM queue")
                queued = int(q) if q is not None else -1
            else:
                queued = load.queue_len(os.path.join(work, "node0", "data", "gateway.db"))
            if queued == 0:
                break
            time.sleep(0.1)
        t_end = time.time()
        gw_cpu = sum(load.proc_cpu_s(g.pid) for g in gws) - gw_cpu0
        pg_cpu = (pg.cpu_s() - pg_cpu0) if store else 0.0
        acc = sum(f["accepted"] for f in figures)
        window = max(f["window_s"] for f in figures)
        return {
            "setup": setup, "n": n, "conc": conc, "accepted": int(acc),
            "accepted_per_s": round(acc / window, 1) if window else 0,
            "e2e_per_s": round(acc / (t_end - t0), 1) if queued == 0 else 0,
            "p50_ms": round(max(f["p50_us"] for f in figures) / 1000, 2),
            "p99_ms": round(max(f["p99_us"] for f in figures) / 1000, 2),
            "errors": int(sum(f["errors"] for f in figures)),
            "gw_cpu_us_per_msg": round(gw_cpu * 1e6 / acc, 1) if acc else 0,
            "pg_cpu_us_per_msg": round(pg_cpu * 1e6 / acc, 1) if acc else 0,
            "left_in_queue": queued,
        }
    finally:
        for g in gws:
            g.send_signal(signal.SIGTERM)
        for g in gws:
            try:
                g.wait(timeout=30)
            except subprocess.TimeoutExpired:
                g.kill()
        sink.send_signal(signal.SIGINT)
        try:
            sink.wait(timeout=10)
        except subprocess.TimeoutExpired:
            sink.kill()
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--conc", type=int, default=32)
    ap.add_argument("--setups", default="sqlite,pg1,pg2")
    ap.add_argument("--max-seconds", type=int, default=120)
    ap.add_argument("--pg-max-batch", type=int, default=None,
                    help="[store] max_batch of the PostgreSQL nodes (1: no group commit)")
    ap.add_argument("--statements", action="store_true",
                    help="pg_stat_statements: statements, commits and WAL flushes per message")
    a = ap.parse_args()
    if not os.path.exists(GW):
        raise SystemExit(f"{GW} missing: cargo build --release -p gateway")
    setups = a.setups.split(",")
    pg = Postgres(a.statements) if any(s.startswith("pg") for s in setups) else None
    try:
        rows = []
        for s in setups:
            r = phase(s, a.n, a.conc, a.max_seconds, pg, a.pg_max_batch)
            rows.append(r)
            print("cluster " + " ".join(f"{k}={v}" for k, v in r.items()), flush=True)
        print("\n| setup | msgs/s accepted | msgs/s end to end | p50 ms | p99 ms | gateway CPU µs/msg | PostgreSQL CPU µs/msg |")
        print("|---|---|---|---|---|---|---|")
        names = {"sqlite": "one node, SQLite", "pg1": "one node, PostgreSQL", "pg2": "two nodes, PostgreSQL"}
        for r in rows:
            print(f"| {names.get(r['setup'], r['setup'])} | {r['accepted_per_s']} | {r['e2e_per_s']} | "
                  f"{r['p50_ms']} | {r['p99_ms']} | {r['gw_cpu_us_per_msg']} | {r['pg_cpu_us_per_msg']} |")
    finally:
        if pg:
            pg.stop()


if __name__ == "__main__":
    main()
