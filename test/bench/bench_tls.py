"""Client TLS in `make bench` (called by run_bench.py): queue publish over
TLS against plain HTTP on the same build, with wrk's publish.lua at 64
connections (-t2, keep-alive, so the handshake is paid once per connection)
with fsync=never (the TLS cost is not hidden behind the disk) and
fsync=always. Each mode starts one plain and one TLS node (MOM_TLS_CERT,
MOM_TLS_KEY with an ECDSA P-256 certificate made here with
python3-cryptography). Then the cost of a new connection: REQUESTS
sequential GET /healthz each on a new connection, median ms, plain and TLS.

SPDX-License-Identifier: MIT
"""

import datetime
import http.client
import ipaddress
import os
import ssl
import statistics
import time

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import run_bench as rb

CONNS = 64
REQUESTS = 200


def make_cert(d):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mom bench")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cpath, kpath = os.path.join(d, "bench-cert.pem"), os.path.join(d, "bench-key.pem")
    with open(cpath, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(kpath, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return cpath, kpath


class Node:
    def __init__(self, args, procs, log_dir, data_dir, secret, fsync, tag, tls):
        self.tls = tls
        argv = [args.momd, "--node-id", "1", "--http-addr", "127.0.0.1:0",
                "--peer-addr", "127.0.0.1:0", "--data-dir", data_dir, "--jwt-secret", secret,
                "--fsync", fsync, "--log-level", args.momd_log_level]
        if tls:
            argv += ["--tls-cert", tls[0], "--tls-key", tls[1]]
        os.makedirs(data_dir, exist_ok=True)
        self.proc = procs.add(rb.Proc(f"momd-{tag}", argv, log_dir))
        m, _ = self.proc.wait_line(r"MOMD READY .*http=(\S+)", args.start_timeout)
        self.addr = m.group(1)
        self.base = ("https://" if tls else "http://") + self.addr
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = tls[0] if tls else True
        deadline = time.monotonic() + args.start_timeout
        while True:
            try:
                if self.session.get(self.base + "/readyz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or not self.proc.alive():
                raise rb.BenchError(f"momd-{tag} not ready\n{self.proc.stderr_tail()}")
            time.sleep(0.05)

    def new_connection_ms(self):
        host, port = self.addr.rsplit(":", 1)
        ctx = None
        if self.tls:
            ctx = ssl.create_default_context(cafile=self.tls[0])
        times = []
        for _ in range(REQUESTS):
            t0 = time.perf_counter()
            c = (http.client.HTTPSConnection(host, int(port), timeout=10, context=ctx)
                 if self.tls else http.client.HTTPConnection(host, int(port), timeout=10))
            c.request("GET", "/healthz")
            r = c.getresponse()
            r.read()
            c.close()
            if r.status != 200:
                raise rb.BenchError(f"GET /healthz: {r.status}")
            times.append(time.perf_counter() - t0)
        return statistics.median(times) * 1000


def run(args, procs, log_dir, tmp, secret, token):
    tls = make_cert(tmp)
    rows = ["| case | plain req/s | TLS req/s | TLS/plain | plain p50 / p99 ms "
            "| TLS p50 / p99 ms |", "|---|---:|---:|---:|---:|---:|"]
    conn_rows = []
    for fsync in ("never", "always"):
        res = {}
        for kind in ("plain", "tls"):
            tag = f"tls-bench-{kind}-{fsync}"
            node = Node(args, procs, log_dir, os.path.join(tmp, f"data-{tag}"), secret, fsync,
                        tag, tls if kind == "tls" else None)
            try:
                q = f"tlsbench-{kind}"
                r = node.session.put(f"{node.base}/v1/queues/{q}", timeout=10,
                                     headers={"Authorization": f"Bearer {token}"})
                rb.expect(r, (200, 201), f"create {q}")
                rb.log(f"publish over {kind}, fsync={fsync}, -c{CONNS} for {args.duration}s")
                res[kind] = rb.run_wrk(args, "publish.lua", node.base, CONNS,
                                       {"MOM_TOKEN": token, "MOM_QUEUE": q})
                if res[kind]["non2xx"]:
                    raise rb.BenchError(f"{kind}: {res[kind]['non2xx']} non-2xx answers")
                if fsync == "never":
                    conn_rows.append((kind, node.new_connection_ms()))
            finally:
                node.proc.stop()
        p, t = res["plain"], res["tls"]
        rows.append(f"| queue publish, fsync={fsync}, {CONNS} conns | {p['rps']:,.0f} | "
                    f"{t['rps']:,.0f} | {t['rps'] / p['rps']:.2f} | "
                    f"{rb.fmt_ms(p['p50_us'])} / {rb.fmt_ms(p['p99_us'])} | "
                    f"{rb.fmt_ms(t['p50_us'])} / {rb.fmt_ms(t['p99_us'])} |")
    rows += ["", "| new connection + GET /healthz (serial, median) | ms |", "|---|---:|"]
    rows += [f"| {kind} | {ms:.2f} |" for kind, ms in conn_rows]
    return "\n".join(rows)
