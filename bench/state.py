#!/usr/bin/env python3
"""The state on SQLite and PostgreSQL: start-up and memory with a long history, memory with
many live incidents, acknowledgements while every commit is slow, and new-incident intake.

Usage (after `cargo build --release`; needs wrk and postgresql from Debian, and Python's
`cryptography`):
    python3 bench/state.py [--binary target/release/vault-triage] [--history 20000]

1. History: N alert groups fire and resolve; with `[state] retention = "1s"` they are past the
   retention at the next start. Reported: time from start to the first `/readyz` 200, RSS then,
   and how many incidents `vault-triage audit --format json` still lists.
2. Live: 10,000 alert groups firing (five alerts each); RSS of `serve`.
3. Acknowledgements while every state commit takes 200 ms (`VAULT_TRIAGE_STATE_DELAY_MS`):
   signed Slack and Discord requests, 16 at a time, while 16 senders post new alert groups
   (each one commit) the whole time.
4. Intake of a new alert group per request (one commit each), wrk 2 threads x 32 connections,
   on SQLite and on PostgreSQL (a throwaway server on a free port, as tests/run starts it).
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from benchlib import percentile, start_lab
from edges_and_intake import (FIRING, discord_command, free_port, post, rss_kb, slack_click,
                              slack_command, slack_headers, start_serve, wait_http, wrk,
                              SLACK_SECRET)
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization

AUTH = {"Authorization": "Bearer bench", "Content-Type": "application/json"}


RESOLVED = open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                             "tests/fixtures/alertmanager/resolved.raw.json"), "rb").read()


def group(receiver, status="firing"):
    """The captured firing (or resolved) group, sent to receiver `receiver`: a group of its own."""
    raw = FIRING if status == "firing" else RESOLVED
    return raw.decode().replace('"receiver":"triage-bot"', f'"receiver":"{receiver}"').encode()


def with_alerts(cfg, extra_state=""):
    text = open(cfg).read()
    if extra_state:
        text = text.replace("[state]\n", "[state]\n" + extra_state, 1)
    text += '\n[alerts]\ntokens = ["bench"]\nmax_body_bytes = 262144\n\n[alerts.trigger]\nenabled = false\n'
    open(cfg, "w").write(text)


def post_many(base, bodies, threads=16):
    def one(b):
        return post(base + "/alerts/alertmanager", b, AUTH)[1]
    with ThreadPoolExecutor(threads) as ex:
        statuses = list(ex.map(one, bodies))
    bad = [s for s in statuses if s != 200]
    assert not bad, f"{len(bad)} deliveries refused"


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)


def wait_ready(url, timeout=60):
    start = time.perf_counter()
    while True:
        try:
            import urllib.request
            with urllib.request.urlopen(url + "/readyz", timeout=2) as r:
                if r.status == 200:
                    return time.perf_counter() - start
        except Exception:
            pass
        if time.perf_counter() - start > timeout:
            raise SystemExit(f"{url} never became ready")
        time.sleep(0.005)


def history(binary, n, env_extra):
    work = tempfile.mkdtemp(prefix="vt-bench-")
    lab, env = start_lab(binary, work)
    with_alerts(env["VAULT_TRIAGE_CONFIG"], 'retention = "1s"\n')
    env.update(env_extra)
    port = free_port()
    serve = start_serve(binary, env, {}, port)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/healthz")
        post_many(base, [group(f"hist-{i}") for i in range(n)])
        post_many(base, [group(f"hist-{i}", "resolved") for i in range(n)])
        stop(serve)
        time.sleep(2)  # past the 1 s retention
        port = free_port()
        serve = start_serve(binary, env, {}, port)
        took = wait_ready(f"http://127.0.0.1:{port}")
        time.sleep(1)
        rss = rss_kb(serve.pid)
        stop(serve)
        out = subprocess.run([binary, "audit", "--format", "json"], env={**os.environ, **env},
                             capture_output=True, text=True, check=True).stdout
        incidents = set()
        for line in out.splitlines():
            e = json.loads(line)
            if e["event"]["type"] == "incident_updated":
                incidents.add(e["event"]["incident"])
        return took, rss, len(incidents)
    finally:
        stop(serve)
        stop(lab)
        shutil.rmtree(work, ignore_errors=True)


def live(binary, n, env_extra):
    work = tempfile.mkdtemp(prefix="vt-bench-")
    lab, env = start_lab(binary, work)
    with_alerts(env["VAULT_TRIAGE_CONFIG"])
    env.update(env_extra)
    port = free_port()
    serve = start_serve(binary, env, {}, port)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/healthz")
        idle = rss_kb(serve.pid)
        post_many(base, [group(f"live-{i}") for i in range(n)])
        time.sleep(1)
        return idle, rss_kb(serve.pid)
    finally:
        stop(serve)
        stop(lab)
        shutil.rmtree(work, ignore_errors=True)


def acks_with_slow_commits(binary, n, conc, delay_ms):
    key = Ed25519PrivateKey.generate()
    pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
    work = tempfile.mkdtemp(prefix="vt-bench-")
    lab, env = start_lab(binary, work)
    with_alerts(env["VAULT_TRIAGE_CONFIG"])
    port = free_port()
    serve = start_serve(binary, env, {
        "SLACK_SIGNING_SECRET": SLACK_SECRET, "SLACK_BOT_TOKEN": "xoxb-bench",
        "SLACK_API_URL": "http://127.0.0.1:1/api/", "DISCORD_PUBLIC_KEY": pub,
        "DISCORD_BOT_TOKEN": "bench", "DISCORD_APPLICATION_ID": "1300000000000000001",
        "DISCORD_API_URL": "http://127.0.0.1:1", "DISCORD_GATEWAY": "off",
        "VAULT_TRIAGE_STATE_DELAY_MS": str(delay_ms)}, port)
    base = f"http://127.0.0.1:{port}"
    done = threading.Event()
    intake = []

    def load(worker):
        i = 0
        while not done.is_set():
            t, s = post(base + "/alerts/alertmanager", group(f"load-{worker}-{i}"), AUTH)
            intake.append(t * 1000)
            i += 1
    try:
        wait_http(base + "/healthz")
        loaders = [threading.Thread(target=load, args=(w,)) for w in range(16)]
        for t in loaders:
            t.start()
        time.sleep(1)
        rows = []
        for name, path, make, sign in [
            ("/slack/commands", "/slack/commands", slack_command, "slack"),
            ("/slack/interactions", "/slack/interactions", slack_click, "slack"),
            ("/discord/interactions", "/discord/interactions", discord_command, "discord"),
        ]:
            def one(i):
                body = make(i)
                if sign == "slack":
                    headers = slack_headers(body)
                else:
                    ts = str(int(time.time()))
                    headers = {"X-Signature-Ed25519": key.sign(ts.encode() + body).hex(),
                               "X-Signature-Timestamp": ts, "Content-Type": "application/json"}
                return post(base + path, body, headers)
            with ThreadPoolExecutor(conc) as ex:
                results = list(ex.map(one, range(n)))
            lat = [r[0] * 1000 for r in results]
            bad = [r[1] for r in results if r[1] != 200]
            rows.append((name, statistics.median(lat), percentile(lat, 99), max(lat), len(bad)))
        done.set()
        for t in loaders:
            t.join()
        rows.append(("/alerts/alertmanager (new group, one commit)", statistics.median(intake),
                     percentile(intake, 99), max(intake), 0))
        return rows
    finally:
        done.set()
        stop(serve)
        stop(lab)
        shutil.rmtree(work, ignore_errors=True)


def intake_rate(binary, seconds, env_extra):
    work = tempfile.mkdtemp(prefix="vt-bench-")
    lab, env = start_lab(binary, work)
    with_alerts(env["VAULT_TRIAGE_CONFIG"])
    env.update(env_extra)
    port = free_port()
    serve = start_serve(binary, env, {}, port)
    base = f"http://127.0.0.1:{port}"
    fresh = os.path.join(work, "fresh.lua")
    template = FIRING.decode().replace("%", "%%").replace('"receiver":"triage-bot"', '"receiver":"bench-%s"')
    with open(fresh, "w") as f:
        f.write('local n = 0\nlocal template = ' + json.dumps(template) + '\n'
                'request = function()\n  n = n + 1\n'
                '  local body = string.format(template, tostring(n) .. "-" .. tostring(math.random(1, 1000000000)))\n'
                '  return wrk.format("POST", nil, {["Authorization"] = "Bearer bench", ["Content-Type"] = "application/json"}, body)\nend\n')
    try:
        wait_http(base + "/healthz")
        return wrk(base + "/alerts/alertmanager", fresh, seconds, 32)
    finally:
        stop(serve)
        stop(lab)
        shutil.rmtree(work, ignore_errors=True)


class Postgres:
    """A throwaway PostgreSQL server on a free loopback port (as tests/run starts one)."""

    def __init__(self):
        bins = sorted(d for d in (os.path.join("/usr/lib/postgresql", v, "bin")
                                  for v in os.listdir("/usr/lib/postgresql")) if os.path.isdir(d))
        self.bin = bins[-1]
        self.dir = tempfile.mkdtemp(prefix="vt-pg-")
        self.port = free_port()
        self.as_user = []
        if os.getuid() == 0:
            shutil.chown(self.dir, "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        subprocess.run(self.as_user + [f"{self.bin}/initdb", "-D", f"{self.dir}/data", "-A", "trust", "-U", "vt"],
                       check=True, capture_output=True)
        subprocess.run(self.as_user + [f"{self.bin}/pg_ctl", "-D", f"{self.dir}/data", "-w", "-l", f"{self.dir}/log",
                                       "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "start"],
                       check=True, capture_output=True)
        self.n = 0

    def database(self):
        self.n += 1
        name = f"bench{self.n}"
        subprocess.run([f"{self.bin}/psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "vt", "-d", "postgres",
                        "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True)
        return f"postgres://vt@127.0.0.1:{self.port}/{name}"

    def stop(self):
        subprocess.run(self.as_user + [f"{self.bin}/pg_ctl", "-D", f"{self.dir}/data", "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="target/release/vault-triage")
    ap.add_argument("--history", type=int, default=20_000)
    ap.add_argument("--live", type=int, default=10_000)
    ap.add_argument("--seconds", type=int, default=15)
    a = ap.parse_args()
    pg = Postgres()
    try:
        backends = [("SQLite", lambda: {}), ("PostgreSQL", lambda: {"VAULT_TRIAGE_STATE_URL": pg.database()})]
        print(f"## {a.history:,} incidents fired and resolved, past the retention, then a start")
        print("| state | first /readyz 200 | RSS then | incidents `audit` lists |")
        print("|---|---|---|---|")
        for name, env in backends:
            took, rss, listed = history(a.binary, a.history, env())
            print(f"| {name} | {took * 1000:.0f} ms | {rss / 1024:.1f} MiB | {listed:,} |")
        print()
        print(f"## {a.live:,} live incidents (five alerts each)")
        print("| state | RSS idle | RSS with the incidents |")
        print("|---|---|---|")
        for name, env in backends:
            idle, loaded = live(a.binary, a.live, env())
            print(f"| {name} | {idle / 1024:.1f} MiB | {loaded / 1024:.1f} MiB |")
        print()
        print("## Acknowledgements while every commit takes 200 ms (SQLite), 16 alert senders busy")
        print("| endpoint | p50 | p99 | max | non-200 |")
        print("|---|---|---|---|---|")
        for name, p50, p99, mx, bad in acks_with_slow_commits(a.binary, 400, 16, 200):
            print(f"| `{name}` | {p50:.1f} ms | {p99:.1f} ms | {mx:.1f} ms | {bad} |")
        print()
        print(f"## New-incident intake (one commit each), wrk 2 threads x 32 connections, {a.seconds} s")
        print("| state | requests/s | p50 | p99 | non-2xx |")
        print("|---|---|---|---|---|")
        for name, env in backends:
            rps, p50, p99, bad = intake_rate(a.binary, a.seconds, env())
            print(f"| {name} | {rps:.0f} | {p50:.2f} ms | {p99:.2f} ms | {bad} |")
    finally:
        pg.stop()


if __name__ == "__main__":
    sys.exit(main())
