"""The servers under test in bench/load/run: the certificates, the plaintext
nginx backend, and each proxy (tern, HAProxy, hitch, nginx) configured the
same way and started on the proxy CPU.
"""

import os
import shlex
import socket
import ssl
import time

import common
from common import (CIPHERSUITE, MAX_CONNS, NGINX_STREAM_MODULE, BenchError, read_text,
                    tail, write_file)
from procs import run_tool


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_tls(port, proc, log_path, bound=15.0):
    """Waits until a TLS handshake on 127.0.0.1:port succeeds (at most
    `bound` s) while the process is alive."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    deadline = time.monotonic() + bound
    last = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError("exited with %s before accepting TLS: %s"
                             % (proc.returncode, tail(read_text(log_path))))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
                with ctx.wrap_socket(s, server_hostname="localhost"):
                    return
        except (OSError, ssl.SSLError) as e:
            last = e
        time.sleep(0.05)
    raise BenchError("no TLS handshake on port %d within %.0fs (%s): %s"
                     % (port, bound, last, tail(read_text(log_path))))


def wait_http(port, proc, log_path, bound=15.0):
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError("backend exited with %s: %s"
                             % (proc.returncode, tail(read_text(log_path))))
        try:
            return http_get_raw(port, "/small")
        except OSError:
            time.sleep(0.05)
    raise BenchError("backend: no answer on port %d within %.0fs" % (port, bound))


def http_get_raw(port, path, version="1.0"):
    with socket.create_connection(("127.0.0.1", port), timeout=2.0) as s:
        s.sendall(("GET %s HTTP/%s\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                   % (path, version)).encode())
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    return b"".join(chunks)



def make_certs(tmp):
    """One ECDSA P-256 and one RSA-2048 self-signed certificate for
    localhost, each as cert+key in one PEM (mode 0600: tern refuses a key
    file others can read)."""
    certs = {}
    for kind, newkey in (("ecdsa", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]),
                         ("rsa", ["-newkey", "rsa:2048"])):
        key, crt, pem = (os.path.join(tmp, "%s.%s" % (kind, ext)) for ext in ("key", "crt", "pem"))
        run_tool(["openssl", "req", "-x509"] + newkey +
                 ["-nodes", "-keyout", key, "-out", crt, "-days", "30",
                  "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                 timeout=60, cpu=None)
        with open(pem, "w") as out:
            for part in (crt, key):
                out.write(read_text(part))
        os.chmod(pem, 0o600)
        certs[kind] = pem
    return certs


def start_backend(procs, tmp, port):
    """nginx serving /small, /1k, /1m over plaintext HTTP/1.1 keep-alive,
    one worker, pinned to the load CPU."""
    prefix = os.path.join(tmp, "backend")
    www = os.path.join(prefix, "www")
    os.makedirs(www)
    bodies = {"small": b"ok\n", "1k": b"k" * 1024, "1m": b"m" * (1 << 20)}
    for name, body in bodies.items():
        with open(os.path.join(www, name), "wb") as f:
            f.write(body)
    conf = os.path.join(prefix, "nginx.conf")
    temp = "\n".join("  %s_temp_path %s/%s;" % (t, prefix, t) for t in
                     ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    write_file(conf, f"""# bench/load backend: plaintext HTTP, one worker
worker_processes 1;
daemon off;
master_process on;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
worker_rlimit_nofile 20000;
events {{ worker_connections 16000; multi_accept on; }}
http {{
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 600s;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  open_file_cache max=16;
  default_type application/octet-stream;
{temp}
  server {{
    listen 127.0.0.1:{port} backlog=8192;
    root {www};
  }}
}}
""")
    log_path = os.path.join(prefix, "stderr.log")
    p = procs.start(["nginx", "-p", prefix, "-c", conf, "-e", prefix + "/error.log"],
                    log_path, cpu=common.LOAD_CPU)
    wait_http(port, p, log_path)
    for name, body in bodies.items():
        got = http_get_raw(port, "/" + name)
        if not got.startswith(b"HTTP/1.1 200") or not got.endswith(body):
            raise BenchError("backend: /%s does not serve its body" % name)
    return p


class Proxy:
    """How to start one proxy with one certificate; `start` returns the
    Popen of the process tree's root."""

    def __init__(self, name, args, tmp, backend_port):
        self.name = name
        self.args = args
        self.port = free_port()
        self.backend_port = backend_port
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.log_path = os.path.join(self.dir, "stderr.log")
        self.description = ""

    def argv(self, cert, storm=None, tern_extra=()):
        """The command line (writing the configuration file first); with
        `storm` (a StormSetting), the session lifetime and refresh of the
        storm phase on top of the configuration every phase uses;
        `tern_extra`: more tern flags, a phase's own (first_response)."""
        listen = "127.0.0.1:%d" % self.port
        backend = "127.0.0.1:%d" % self.backend_port
        w = common.WORKERS
        if self.name == "tern":
            extra = shlex.split(self.args.tern_args) + list(tern_extra)
            self.description = ("tern -w %d --tls-min 1.3 --ciphersuites %s --max-conns %d "
                                "--log-level warn%s (tickets: --num-tickets 2 and --handshake-tickets "
                                "with-data, the defaults)"
                                % (w, CIPHERSUITE, MAX_CONNS,
                                   "".join(" " + a for a in extra)))
            return [self.args.tern, "-l", listen, "-b", backend, "-w", str(w),
                    "--cert", cert, "--tls-min", "1.3", "--ciphersuites", CIPHERSUITE,
                    "--max-conns", str(MAX_CONNS), "--log-level", "warn",
                    "--drain-timeout", "1s"] + extra + (storm.tern_args() if storm else [])
        if self.name == "haproxy":
            conf = os.path.join(self.dir, "haproxy.cfg")
            # The storm phase's session lifetime (seconds): the TLS 1.2
            # session timeout and the lifetime TLS 1.3 tickets announce.
            lifetime = "  tune.ssl.lifetime %d\n" % storm.lifetime if storm else ""
            write_file(conf, f"""# bench/load: HAProxy as a TLS terminator, TCP mode, no logs
global
  nbthread {w}
  maxconn {MAX_CONNS}
{lifetime}  ssl-default-bind-ciphersuites {CIPHERSUITE}
  ssl-default-bind-options ssl-min-ver TLSv1.3
defaults
  mode tcp
  maxconn {MAX_CONNS}
  timeout connect 5s
  timeout client 10m
  timeout server 10m
frontend tls
  bind {listen} ssl crt {cert}
  default_backend plain
backend plain
  server b1 {backend}
""")
            self.description = ("HAProxy nbthread %d, mode tcp, bind ssl crt, ssl-min-ver TLSv1.3, "
                                "maxconn %d, no log (tickets: OpenSSL default, on)" % (w, MAX_CONNS))
            return ["haproxy", "-db", "-f", conf]
        if self.name == "hitch":
            conf = os.path.join(self.dir, "hitch.conf")
            ocsp = os.path.join(self.dir, "ocsp")
            os.makedirs(ocsp, exist_ok=True)
            write_file(conf, f"""# bench/load: hitch, no logs
frontend = "[127.0.0.1]:{self.port}"
backend = "[127.0.0.1]:{self.backend_port}"
pem-file = "{cert}"
workers = {w}
backlog = 4096
tls-protos = TLSv1.3
ciphersuites = "{CIPHERSUITE}"
daemon = off
syslog = off
log-level = 1
ocsp-dir = "{ocsp}"
user = "nobody"
group = "nogroup"
ocsp-verify-staple = off
""")
            self.description = ("hitch workers = %d (plus its management process; workers run "
                                "as nobody, since hitch refuses root), "
                                "tls-protos = TLSv1.3, log-level 1 (errors only) "
                                "(tickets: OpenSSL default, on)" % w)
            return ["hitch", "--config", conf]
        if self.name == "nginx":
            conf = os.path.join(self.dir, "nginx.conf")
            lifetime = "    ssl_session_timeout %ds;\n" % storm.lifetime if storm else ""
            write_file(conf, f"""# bench/load: nginx stream module as a TLS terminator
load_module {NGINX_STREAM_MODULE};
worker_processes {w};
daemon off;
master_process on;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log warn;
worker_rlimit_nofile 20000;
events {{ worker_connections 12000; multi_accept on; }}
stream {{
  server {{
    listen {listen} ssl backlog=4096;
    ssl_certificate {cert};
    ssl_certificate_key {cert};
    ssl_protocols TLSv1.3;
    ssl_conf_command Ciphersuites {CIPHERSUITE};
    ssl_session_tickets on;
{lifetime}    proxy_pass {backend};
  }}
}}
""")
            self.description = ("nginx worker_processes %d (plus master), stream { listen ssl; "
                                "proxy_pass }, ssl_protocols TLSv1.3, ssl_session_tickets on, "
                                "worker_connections 12000, no access log" % w)
            return ["nginx", "-p", self.dir, "-c", conf, "-e", self.dir + "/error.log"]
        raise ValueError(self.name)

    def start(self, procs, cert, storm=None, tern_extra=()):
        p = procs.start(self.argv(cert, storm, tern_extra), self.log_path, cpu=common.PROXY_CPU)
        try:
            wait_tls(self.port, p, self.log_path)
        except BenchError:
            procs.stop(p)
            raise
        return p
