#!/usr/bin/env python3
"""Acknowledgement latency, webhook intake throughput, memory and restart time of `serve`.

Usage (after `cargo build --release`; needs wrk from Debian and Python's `cryptography`):
    python3 bench/edges_and_intake.py [--binary target/release/vault-triage] [--requests 400]

1. Acks while Vault hangs: the lab runs with `--fault vault=hang`; signed `/slack/commands`,
   `/slack/interactions` (an Approve click) and `/discord/interactions` (a command) are sent
   16 at a time; latency is measured from send to the HTTP answer (p50, p99, max).
2. Intake on `/alerts/alertmanager` with the captured 4 KB payload, 30 s of wrk at 32
   connections: repeated deliveries (the dedupe path), and every request a new group (the
   journaled path, one fsync each), next to the ceiling: a bare axum handler that reads the
   same POST and answers 200 (`bench/bare_axum.rs`, `cargo build --release --example bare_axum`).
3. Memory: RSS of `serve` idle and after 10,000 open incidents.
4. Restart: time from start to the first `/healthz` answer with a journal of 100,000 events.
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization

from benchlib import percentile, start_lab

SLACK_SECRET = "bench-signing-secret"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRING = open(os.path.join(ROOT, "tests/fixtures/alertmanager/firing.raw.json"), "rb").read()


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_http(url, timeout=60):
    start = time.perf_counter()
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return time.perf_counter() - start
        except Exception:
            pass
        if time.perf_counter() - start > timeout:
            raise SystemExit(f"{url} did not answer")
        time.sleep(0.01)


def start_serve(binary, env, extra, port):
    e = {**os.environ, **env, **extra, "VAULT_TRIAGE_LOG": "warn"}
    proc = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{port}"], env=e,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc


def rss_kb(pid):
    m = re.search(r"VmRSS:\s+(\d+) kB", open(f"/proc/{pid}/status").read())
    return int(m.group(1))


def post(url, body, headers):
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=10) as r:
        r.read()
        status = r.status
    return time.perf_counter() - t0, status


def slack_headers(body):
    ts = str(int(time.time()))
    sig = "v0=" + hmac.new(SLACK_SECRET.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig,
            "Content-Type": "application/x-www-form-urlencoded"}


def slack_command(i):
    return urllib.parse.urlencode({
        "token": "x", "team_id": "T0001", "team_domain": "bench", "channel_id": "C0BENCH",
        "channel_name": "bench", "user_id": f"U{i:08d}", "user_name": "bench",
        "command": "/vault-triage", "text": "", "api_app_id": "A0001",
        "response_url": "http://127.0.0.1:1/response", "trigger_id": f"{i}.1.abc"}).encode()


def slack_click(i):
    payload = {
        "type": "block_actions", "team": {"id": "T0001", "domain": "bench"},
        "user": {"id": f"U{i:08d}", "username": "bench", "name": "bench", "team_id": "T0001"},
        "api_app_id": "A0001", "token": "x", "trigger_id": f"{i}.2.abc",
        "container": {"type": "message", "message_ts": "1700000000.000100", "channel_id": "C0BENCH", "is_ephemeral": False},
        "channel": {"id": "C0BENCH", "name": "bench"},
        "message": {"type": "message", "ts": "1700000000.000100", "text": "card"},
        "response_url": "http://127.0.0.1:1/response",
        "actions": [{"type": "button", "action_id": "vt:approve:req_0123456789abcdef",
                     "block_id": "b", "value": "vt:approve:req_0123456789abcdef",
                     "action_ts": "1700000000.000200", "text": {"type": "plain_text", "text": "Approve"}}],
    }
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()


def discord_command(i):
    uid = str(1400000000000000000 + i)
    return json.dumps({
        "id": str(1500000000000000000 + i), "application_id": "1300000000000000001", "type": 2,
        "token": f"interaction-token-{i}", "version": 1, "locale": "en-US", "guild_locale": "en-US",
        "entitlements": [], "attachment_size_limit": 10485760, "guild_id": "1200000000000000001",
        "channel_id": "1100000000000000001", "channel": {"id": "1100000000000000001", "type": 0},
        "member": {"user": {"id": uid, "username": "bench", "discriminator": "0", "avatar": None, "global_name": None},
                   "roles": [], "deaf": False, "mute": False, "flags": 0,
                   "joined_at": "2026-01-01T00:00:00.000000+00:00", "nick": None},
        "authorizing_integration_owners": {"0": "1200000000000000001"}, "context": 0,
        "data": {"id": "1600000000000000001", "name": "vault-triage", "type": 1,
                 "options": [{"name": "triage", "type": 1, "options": []}]},
    }).encode()


def ack_latency(binary, n, conc):
    key = Ed25519PrivateKey.generate()
    pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
    work = tempfile.mkdtemp(prefix="vt-bench-")
    lab, env = start_lab(binary, work, "--fault=vault=hang")
    port = free_port()
    serve = start_serve(binary, env, {
        "SLACK_SIGNING_SECRET": SLACK_SECRET, "SLACK_BOT_TOKEN": "xoxb-bench",
        "SLACK_API_URL": "http://127.0.0.1:1/api/", "DISCORD_PUBLIC_KEY": pub,
        "DISCORD_BOT_TOKEN": "bench", "DISCORD_APPLICATION_ID": "1300000000000000001",
        "DISCORD_API_URL": "http://127.0.0.1:1", "DISCORD_GATEWAY": "off"}, port)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/healthz")
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
        return rows
    finally:
        serve.send_signal(signal.SIGINT)
        serve.wait(timeout=10)
        lab.send_signal(signal.SIGINT)
        lab.wait(timeout=10)


def wrk(url, lua, seconds, conns):
    out = subprocess.run(["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "--latency", "-s", lua, url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"50%\s+([\d.]+)(\w+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(\w+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    to_ms = lambda m: float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
    return rps, to_ms(p50), to_ms(p99), int(non2xx.group(1)) if non2xx else 0


def intake(binary, seconds, conns):
    work = tempfile.mkdtemp(prefix="vt-bench-")
    lab, env = start_lab(binary, work)
    cfg = env["VAULT_TRIAGE_CONFIG"]
    with open(cfg, "a") as f:
        f.write('\n[alerts]\ntokens = ["bench"]\nmax_body_bytes = 262144\n\n[alerts.trigger]\nenabled = false\n')
    port = free_port()
    serve = start_serve(binary, env, {}, port)
    base = f"http://127.0.0.1:{port}"
    body = FIRING.decode()
    same = os.path.join(work, "same.lua")
    with open(same, "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Authorization"] = "Bearer bench"\n'
                'wrk.headers["Content-Type"] = "application/json"\n'
                f'wrk.body = {json.dumps(body)}\n')
    fresh = os.path.join(work, "fresh.lua")
    # Lua's string.format: escape the payload's own % signs.
    template = FIRING.decode().replace("%", "%%").replace('"receiver":"triage-bot"', '"receiver":"bench-%s"')
    with open(fresh, "w") as f:
        f.write('local n = 0\nlocal template = ' + json.dumps(template) + '\n'
                'request = function()\n  n = n + 1\n'
                '  local body = string.format(template, tostring(n) .. "-" .. tostring(math.random(1, 1000000000)))\n'
                '  return wrk.format("POST", nil, {["Authorization"] = "Bearer bench", ["Content-Type"] = "application/json"}, body)\nend\n')
    bare_port = free_port()
    bare_bin = os.path.join(os.path.dirname(binary), "examples", "bare_axum")
    bare_proc = subprocess.Popen([bare_bin, f"127.0.0.1:{bare_port}"], stderr=subprocess.DEVNULL)
    try:
        wait_http(base + "/healthz")
        idle = rss_kb(serve.pid)
        rows = [("repeated delivery (dedupe)",) + wrk(base + "/alerts/alertmanager", same, seconds, conns),
                ("new group each request (journaled)",) + wrk(base + "/alerts/alertmanager", fresh, seconds, conns)]
        serve.send_signal(signal.SIGINT)
        serve.wait(timeout=10)
        time.sleep(0.5)
        rows.append(("ceiling: bare axum handler, same POST",) +
                    wrk(f"http://127.0.0.1:{bare_port}/alerts/alertmanager", same, seconds, conns))
        return rows, idle
    finally:
        bare_proc.kill()
        if serve.poll() is None:
            serve.send_signal(signal.SIGINT)
            serve.wait(timeout=10)
        lab.send_signal(signal.SIGINT)
        lab.wait(timeout=10)


def memory_and_restart(binary, incidents, events):
    work = tempfile.mkdtemp(prefix="vt-bench-")
    lab, env = start_lab(binary, work)
    cfg = env["VAULT_TRIAGE_CONFIG"]
    with open(cfg, "a") as f:
        f.write('\n[alerts]\ntokens = ["bench"]\n\n[alerts.trigger]\nenabled = false\n')
    port = free_port()
    serve = start_serve(binary, env, {}, port)
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/healthz")
    idle = rss_kb(serve.pid)
    template = FIRING.decode().replace('"receiver":"triage-bot"', '"receiver":"mem-@N@"')
    def one(i):
        return post(base + "/alerts/alertmanager", template.replace("@N@", str(i)).encode(),
                    {"Authorization": "Bearer bench", "Content-Type": "application/json"})
    with ThreadPoolExecutor(16) as ex:
        statuses = [s for _, s in ex.map(one, range(incidents))]
    assert all(s == 200 for s in statuses)
    loaded = rss_kb(serve.pid)
    serve.send_signal(signal.SIGINT)
    serve.wait(timeout=10)
    # A journal of `events` entries: the incidents above, padded with triage records.
    state = re.search(r'dir = "([^"]+)"', open(cfg).read()).group(1)
    path = os.path.join(state, "journal.jsonl")
    have = sum(1 for _ in open(path))
    with open(path, "a") as f:
        for i in range(have, events):
            f.write(json.dumps({"seq": i + 1, "at": "2026-11-28T12:00:00Z", "incident": None,
                                "event": {"type": "triage_completed", "incident": None,
                                          "code": "healthy", "summary": "bench"}}) + "\n")
    size = os.path.getsize(path)
    port = free_port()
    t0 = time.perf_counter()
    serve = start_serve(binary, env, {}, port)
    took = wait_http(f"http://127.0.0.1:{port}/healthz")
    restarted = rss_kb(serve.pid)
    serve.send_signal(signal.SIGINT)
    serve.wait(timeout=10)
    lab.send_signal(signal.SIGINT)
    lab.wait(timeout=10)
    return idle, loaded, took, size, restarted


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="target/release/vault-triage")
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--seconds", type=int, default=15)
    a = ap.parse_args()
    print("## Acknowledgement latency while Vault hangs (16 concurrent senders)")
    print("| endpoint | p50 | p99 | max | non-200 |")
    print("|---|---|---|---|---|")
    for name, p50, p99, mx, bad in ack_latency(a.binary, a.requests, 16):
        print(f"| `{name}` | {p50:.1f} ms | {p99:.1f} ms | {mx:.1f} ms | {bad} |")
    print()
    print(f"## Intake on /alerts/alertmanager, 4 KB payload, wrk 2 threads 32 connections {a.seconds} s")
    rows, _ = intake(a.binary, a.seconds, 32)
    print("| case | requests/s | p50 | p99 | non-2xx |")
    print("|---|---|---|---|---|")
    for name, rps, p50, p99, bad in rows:
        print(f"| {name} | {rps:.0f} | {p50:.2f} ms | {p99:.2f} ms | {bad} |")
    print()
    idle, loaded, took, size, restarted = memory_and_restart(a.binary, 10_000, 100_000)
    print("## Memory and restart")
    print(f"- RSS idle: {idle / 1024:.1f} MB; with 10,000 open incidents: {loaded / 1024:.1f} MB")
    print(f"- Restart with a journal of 100,000 events ({size / 1e6:.1f} MB): first /healthz after {took * 1000:.0f} ms; RSS then {restarted / 1024:.1f} MB")


if __name__ == "__main__":
    sys.exit(main())
