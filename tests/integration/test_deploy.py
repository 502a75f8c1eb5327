"""deploy/: the files are checked against the binary they ship, so that a
flag renamed or a system call added cannot silently break a deployment.

- tern.service and tern.socket pass `systemd-analyze verify` with no
  warning; the service's ExecStart is accepted by `tern --check`; the
  socket's addresses are the service's --listen addresses; its
  ExecReload, run against tern started from its ExecStart, exits 0 for a
  reload that worked and 1 (naming the file) for one that failed.
- tern, traced with strace through start, traffic, the control socket,
  SIGHUP, the notify socket with a watchdog, and a drain, and the unit's
  ExecReload traced too, make no system call the unit's SystemCallFilter
  refuses.
- The Kubernetes manifests parse (PyYAML) and hold what docs/operations.md
  promises (probes on /healthz and /readyz of the metrics port, scrape
  annotations, anti-affinity, a PodDisruptionBudget); the deployment's
  tern arguments pass `tern --check` and, run here, answer its probes as
  the kubelet reads them; the pod is tern alone, and its arguments, run
  against kubelet-style Secret volumes, take a Secret update (a switched
  ..data symlink) of the certificate and of the ticket keys by
  themselves.
- The Dockerfile's stages, user, port and entrypoint, the Debian packages
  it names, and that its runtime packages provide every library the binary
  links.

No container engine and no cluster are needed (this machine has neither).
Each check needs a tool (systemd-analyze, strace, PyYAML, apt-cache); .ci/run
installs them, and a check whose tool is missing is skipped with its name.
"""

import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Tern, TernTestCase, ctl, free_port, main, scaled, tern_bin,  # noqa: E402
                     wait_for)
from test_watch import der_of  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DEPLOY = os.path.join(ROOT, "deploy")
DEFAULT_DRAIN_S = 30

try:
    import yaml
except ImportError:  # Debian: python3-yaml
    yaml = None


def read(*parts):
    with open(os.path.join(DEPLOY, *parts)) as f:
        return f.read()


def read_file(path):
    with open(path, errors="replace") as f:
        return f.read()


def unit_entries(text):
    """[(section, key, value)] of a systemd unit, continuation lines joined."""
    out, section, pending = [], None, ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.append((section, key.strip(), value.strip()))
    return out


def unit_values(text, key):
    return [v for _, k, v in unit_entries(text) if k == key]


def is_sanitizer_build(path):
    """True for TERN_SANITIZER builds: they link a sanitizer runtime, whose
    entry points the binary names."""
    with open(path, "rb") as f:
        data = f.read()
    return any(marker in data for marker in (b"__asan_init", b"__tsan_init", b"__ubsan_handle"))


def seconds(text):
    m = re.fullmatch(r"(\d+)(ms|s|min|m)?", text)
    n = int(m.group(1))
    return {"ms": n / 1000, "s": n, None: n, "min": n * 60, "m": n * 60}[m.group(2)]


def syscall_groups():
    """systemd-analyze's groups, each expanded to its system calls."""
    out = subprocess.run(["systemd-analyze", "syscall-filter"], capture_output=True, text=True,
                         check=True).stdout
    groups, current = {}, None
    for line in out.splitlines():
        if line.startswith("@"):
            current = line.strip()
            groups[current] = []
        elif line.strip() and not line.strip().startswith("#") and current:
            groups[current].append(line.strip())

    def expand(name):
        if not name.startswith("@"):
            return {name}
        result = set()
        for member in groups.get(name, []):
            result |= expand(member)
        return result
    return expand


class DeployTestCase(TernTestCase):

    def require(self, tool):
        if not shutil.which(tool):
            self.skipTest("%s not installed (.ci/run installs it)" % tool)

    def require_yaml(self):
        if yaml is None:
            self.skipTest("PyYAML not installed (Debian python3-yaml; .ci/run installs it)")

    def key_file(self, path, mode=0o600):
        """A valid ticket key file: one random 80-byte key, base64."""
        import base64
        with open(path, "w") as f:
            f.write(base64.b64encode(os.urandom(80)).decode() + "\n")
        os.chmod(path, mode)
        return path

    def check_args(self, args):
        """Runs `tern --check ARGS`; fails with its stderr unless exit 0."""
        r = self.run_tern(["--check"] + args)
        self.assertEqual(r.returncode, 0, "tern --check %s:\n%s" % (" ".join(args), r.stderr))

    def service_args(self):
        """tern.service's ExecStart arguments, with /etc/tern and /run/tern
        moved into the test's temp dir and its files made."""
        (exec_start,) = unit_values(read("tern.service"), "ExecStart")
        argv = shlex.split(exec_start)
        self.assertEqual(argv[0], "/usr/local/bin/tern")
        etc = os.path.join(self.tmp, "etc")
        os.makedirs(etc, exist_ok=True)
        cert = self.default_cert()
        shutil.copy(cert["cert"], os.path.join(etc, "cert.pem"))
        self.key_file(os.path.join(etc, "ticket.keys"))
        return [a.replace("/etc/tern/", etc + "/").replace("/run/tern/", self.tmp + "/")
                for a in argv[1:]]


class TestSystemd(DeployTestCase):

    def test_units_verify_without_a_warning(self):
        self.require("systemd-analyze")
        for name in ("tern.service", "tern.socket"):
            text = read(name).replace("/usr/local/bin/tern", os.path.abspath(tern_bin()))
            with open(os.path.join(self.tmp, name), "w") as f:
                f.write(text)
        # Documentation=man:tern(8): verify runs man for each page, so
        # it finds the pages the build wrote (build/man), as installed.
        man8 = os.path.join(self.tmp, "man", "man8")
        os.makedirs(man8)
        for page in ("tern.8", "tern-ctl.8"):
            os.symlink(os.path.join(os.path.dirname(os.path.abspath(tern_bin())), "man", page),
                       os.path.join(man8, page))
        # The trailing ":" keeps the system pages (systemd.exec(5)) too.
        env = dict(os.environ, MANPATH=os.path.join(self.tmp, "man") + ":")
        r = subprocess.run(["systemd-analyze", "verify", "tern.socket", "tern.service"],
                           cwd=self.tmp, capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""),
                         "systemd-analyze verify reported something")

    def test_service_holds_what_the_readme_promises(self):
        unit = read("tern.service")
        one = {k: v for _, k, v in unit_entries(unit)}
        for key, value in {
                "Type": "notify", "NotifyAccess": "main",
                "RuntimeDirectory": "tern", "User": "tern",
                "AmbientCapabilities": "CAP_NET_BIND_SERVICE",
                "CapabilityBoundingSet": "CAP_NET_BIND_SERVICE", "NoNewPrivileges": "yes",
                "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
                "PrivateDevices": "yes", "ProtectKernelTunables": "yes",
                "ProtectKernelModules": "yes", "ProtectKernelLogs": "yes",
                "ProtectControlGroups": "yes",
                "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
                "RestrictNamespaces": "yes", "LockPersonality": "yes",
                "MemoryDenyWriteExecute": "yes", "SystemCallArchitectures": "native",
                "LimitNOFILE": "1048576", "KillSignal": "SIGTERM", "Restart": "on-failure"}.items():
            self.assertEqual(one.get(key), value, key)
        self.assertNotIn("DynamicUser", one)
        allow = unit_values(unit, "SystemCallFilter")[0].split()
        for call in ("@system-service", "io_uring_setup", "io_uring_enter", "io_uring_register"):
            self.assertIn(call, allow)
        self.assertGreater(seconds(one["TimeoutStopSec"]), DEFAULT_DRAIN_S)
        # The control socket lives in the RuntimeDirectory, and the reload
        # goes through it: `tern ctl reload` fails a failed reload, which
        # `kill -HUP` cannot.
        self.assertIn("--control /run/tern/control.sock", one["ExecStart"])
        reload = shlex.split(one["ExecReload"])
        self.assertEqual(reload[:2], ["/usr/local/bin/tern", "ctl"])
        self.assertEqual(reload[-1], "reload")
        self.assertEqual(reload[reload.index("--control") + 1], "/run/tern/control.sock")
        # The reply waits for the reload: within systemd's reload timeout
        # (TimeoutStartSec=, 90s by default).
        self.assertLess(seconds(reload[reload.index("--timeout") + 1]), 90)
        # A watchdog tern feeds only while every worker answers (at least
        # the 3 s health bound, so that it never fires on a worker merely
        # between two pings).
        self.assertGreaterEqual(seconds(one["WatchdogSec"]), 3)

    def test_exec_start_passes_tern_check(self):
        self.check_args(self.service_args())

    def exec_reload(self):
        """tern.service's ExecReload, with /run/tern moved as service_args
        moves it."""
        (exec_reload,) = unit_values(read("tern.service"), "ExecReload")
        argv = shlex.split(exec_reload.replace("/run/tern/", self.tmp + "/"))
        return [tern_bin()] + argv[1:]

    def start_service(self, extra=()):
        """tern as the unit's ExecStart runs it, on a free loopback port
        instead of 443; returns (tern, its etc dir)."""
        args = self.service_args()
        for flag in ("--listen", "--backend"):
            while flag in args:
                i = args.index(flag)
                del args[i:i + 2]
        # The backend first: free_port() probes a port and lets it go, and
        # the backend's own bind to port 0 may be handed that very port.
        backend = self.echo_backend().addr
        for attempt in range(3):
            port = free_port()
            try:
                tern = Tern(self, args + ["--listen", "127.0.0.1:%d" % port, "--backend", backend,
                                          "--workers", "2"] + list(extra))
                break
            except AssertionError:
                # Another process may still take the port between the probe
                # and tern's bind, as start_tern knows.
                if attempt == 2 or "in use" not in self._terns[-1].log():
                    raise
        self.port = port
        return tern, os.path.join(self.tmp, "etc")

    def test_exec_reload_fails_a_failed_reload(self):
        tern, etc = self.start_service()
        reload = self.exec_reload()
        r = subprocess.run(reload, capture_output=True, text=True, timeout=scaled(70))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        tern.wait_log("reloaded: generation 1")
        cert = os.path.join(etc, "cert.pem")
        good = read_file(cert)
        with open(cert, "w") as f:
            f.write(good[:len(good) // 2])  # cut short, as by a copy in progress
        r = subprocess.run(reload, capture_output=True, text=True, timeout=scaled(70))
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(cert, r.stdout + r.stderr)
        tern.wait_log("reload failed, the previous configuration keeps serving")
        # Still serving, on the old certificate.
        c = self.client().handshake()
        self.assertEqual(c.exchange(b"kept", expect=4), b"kept")
        c.close()
        with open(cert, "w") as f:
            f.write(good)
        r = subprocess.run(reload, capture_output=True, text=True, timeout=scaled(70))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        tern.wait_log("reloaded: generation 2")
        # No tern to ask: that fails too, rather than passing silently.
        tern.stop_ok()
        r = subprocess.run(reload, capture_output=True, text=True, timeout=scaled(70))
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)

    def test_socket_addresses_are_the_service_listen_addresses(self):
        args = self.service_args()
        listens = [args[i + 1] for i, a in enumerate(args) if a == "--listen"]
        sockets = unit_values(read("tern.socket"), "ListenStream")
        self.assertEqual(sorted(listens), sorted(sockets))
        self.assertEqual(unit_values(read("tern.socket"), "BindIPv6Only"), ["ipv6-only"])

    def test_syscall_filter_allows_every_call_tern_makes(self):
        self.require("strace")
        self.require("systemd-analyze")
        if is_sanitizer_build(tern_bin()):
            self.skipTest("a sanitizer build: its runtime makes system calls of its own")
        expand = syscall_groups()
        unit = read("tern.service")
        allowed, denied = set(), set()
        for value in unit_values(unit, "SystemCallFilter"):
            if value.startswith("~"):
                for name in value[1:].split():
                    denied |= expand(name)
            else:
                for name in value.split():
                    allowed |= expand(name)
        allowed -= denied

        be = self.echo_backend()
        port = free_port()
        control = os.path.join(self.tmp, "control.sock")
        keys = self.key_file(os.path.join(self.tmp, "ticket.keys"))
        trace = os.path.join(self.tmp, "strace.txt")
        log_path = os.path.join(self.tmp, "traced.stderr")
        # What systemd gives the unit: a notify socket and a watchdog, so
        # that READY, STATUS= and WATCHDOG=1 are traced too.
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(notify.close)
        notify.bind(os.path.join(self.tmp, "notify.sock"))
        env = dict(os.environ, NOTIFY_SOCKET=os.path.join(self.tmp, "notify.sock"),
                   WATCHDOG_USEC="2000000")
        with open(log_path, "wb") as log:
            p = self.popen(["strace", "-f", "-qq", "-o", trace, tern_bin(),
                            "--listen", "127.0.0.1:%d" % port, "--backend", be.addr,
                            "--cert", self.default_cert()["cert"], "--ticket-keys", keys,
                            "--control", control, "--workers", "2", "--access-log"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                           env=env)

        def log_text():
            with open(log_path, "rb") as f:
                return f.read().decode(errors="replace")
        wait_for(lambda: " ready: " in log_text() or p.poll() is not None, 20, "traced tern ready")
        self.assertIn(" ready: ", log_text())
        c = self.client(port=port).handshake()
        self.assertEqual(c.exchange(b"traced", expect=6), b"traced")
        c.shut_write("close_notify")
        c.recv_until_close()
        for command in ("stats", "conns", "rotate-ticket-keys"):
            r = subprocess.run([tern_bin(), "ctl", "--control", control, command],
                               capture_output=True, text=True, timeout=scaled(10))
            self.assertEqual(r.returncode, 0, (command, r.stdout, r.stderr))
        # The unit's ExecReload runs under the same filter: traced as well.
        (exec_reload,) = unit_values(read("tern.service"), "ExecReload")
        reload_argv = shlex.split(exec_reload.replace("/run/tern/control.sock", control))
        reload_trace = os.path.join(self.tmp, "strace-reload.txt")
        r = subprocess.run(["strace", "-f", "-qq", "-o", reload_trace, tern_bin()]
                           + reload_argv[1:], capture_output=True, text=True,
                           timeout=scaled(70))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # A keep-alive and a STATUS= line went out, so sending them was
        # traced too.
        kinds = set()
        notify.settimeout(0.1)

        def sent_both():
            try:
                kinds.add(notify.recv(4096).decode().partition("=")[0])
            except socket.timeout:
                pass
            return {"WATCHDOG", "STATUS"} <= kinds
        wait_for(sent_both, 5, "WATCHDOG=1 and STATUS= from the traced tern")
        # SIGHUP goes to tern, not to strace: tern is strace's child.
        tern_pid = int(subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True,
                                      text=True).stdout.split()[0])
        os.kill(tern_pid, signal.SIGHUP)
        time.sleep(0.3)
        os.kill(tern_pid, signal.SIGTERM)
        p.wait(timeout=scaled(20))
        self.assertIn(" stopped: ", log_text())

        used = set()
        for path in (trace, reload_trace):
            with open(path) as f:
                for line in f:
                    m = re.match(r"\d+\s+([a-z0-9_]+)\(", line)
                    if m:
                        used.add(m.group(1))
        used.discard("execve")  # strace's own exec of tern, before any filter
        self.assertIn("io_uring_setup", used)
        self.assertEqual(sorted(used - allowed), [],
                         "system calls tern made that tern.service's SystemCallFilter refuses")
        self.assertEqual(sorted(used - seccomp_profile_names()), [],
                         "system calls tern made that deploy/seccomp/tern.json refuses")


def seccomp_profile_names():
    """The calls deploy/seccomp/tern.json allows."""
    profile = json.loads(read("seccomp", "tern.json"))
    return {n for rule in profile["syscalls"] for n in rule["names"]}


def kernel_syscall_names():
    """Every system call name of x86_64 and of the generic table (arm64),
    from the kernel headers; None where they are missing."""
    names = set()
    for path in ("/usr/include/x86_64-linux-gnu/asm/unistd_64.h",
                 "/usr/include/asm-generic/unistd.h"):
        if os.path.exists(path):
            with open(path) as f:
                names |= set(re.findall(r"^#define __NR(?:3264)?_(\w+)\s", f.read(), re.M))
    return names or None


class TestSeccompProfile(DeployTestCase):
    """deploy/seccomp/tern.json: what Docker's --security-opt seccomp= and
    Kubernetes' Localhost profiles read. That tern runs under it, on both
    engines, is the seccomp pass of the suite (ctest -L seccomp) and
    test_io.py; here, its form."""

    def test_profile_refuses_by_default_and_allows_io_uring(self):
        profile = json.loads(read("seccomp", "tern.json"))
        self.assertEqual((profile["defaultAction"], profile["defaultErrnoRet"]),
                         ("SCMP_ACT_ERRNO", 1))
        self.assertEqual(profile["architectures"], ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"])
        for rule in profile["syscalls"]:
            self.assertEqual(set(rule), {"comment", "names", "action"}, rule)
            self.assertEqual(rule["action"], "SCMP_ACT_ALLOW", rule)
        names = seccomp_profile_names()
        self.assertLessEqual({"io_uring_setup", "io_uring_enter", "io_uring_register",
                              "epoll_create1", "epoll_ctl"}, names)
        # Nothing a container should never need: what Docker's default
        # profile keeps for privileged containers only.
        self.assertEqual(names & {"ptrace", "mount", "umount2", "bpf", "kexec_load",
                                  "init_module", "unshare", "setns", "perf_event_open",
                                  "keyctl", "add_key", "userfaultfd"}, set())
        known = kernel_syscall_names()
        if known is None:
            self.skipTest("no kernel headers to check the names against (linux-libc-dev)")
        self.assertEqual(sorted(names - known), [], "names no kernel table has: typos")


class TestKubernetes(DeployTestCase):

    def manifests(self):
        self.require_yaml()
        out = {}
        for name in ("deployment.yaml", "service.yaml", "secret.yaml", "pdb.yaml"):
            docs = [d for d in yaml.safe_load_all(read("kubernetes", name)) if d]
            self.assertTrue(docs, name)
            for d in docs:
                out[(d["kind"], d["metadata"]["name"])] = d
        return out

    def test_manifests_parse_and_hold_what_the_readme_promises(self):
        m = self.manifests()
        dep = m[("Deployment", "tern")]
        pod = dep["spec"]["template"]["spec"]
        self.assertEqual(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault")
        self.assertTrue(pod["securityContext"]["runAsNonRoot"])
        containers = {c["name"]: c for c in pod["containers"]}
        tern = containers["tern"]
        args = tern["args"]
        self.assertEqual(args[args.index("--ticket-keys") + 1], "/etc/tern/keys/ticket.keys")
        ports = {p["name"]: p["containerPort"] for p in tern["ports"]}
        self.assertEqual(ports["https"], 8443)
        # --metrics on every address of the pod (the kubelet probes the
        # pod's IP), its port named for the probes.
        host, _, mport = args[args.index("--metrics") + 1].rpartition(":")
        self.assertEqual(host, "0.0.0.0")
        self.assertEqual(ports["metrics"], int(mport))
        # The probes ask the workers, through the metrics listener.
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            get = tern[probe]["httpGet"]
            self.assertEqual((get["path"], ports.get(get["port"], get["port"])),
                             (path, int(mport)), probe)
            self.assertNotIn("exec", tern[probe])
        # Restarted only after several failed probes, each within its
        # timeout: longer than the 3 s a worker may take to be judged.
        live = tern["livenessProbe"]
        self.assertGreaterEqual(live["failureThreshold"] * live["periodSeconds"], 3 * 10)
        # Scraped where Prometheus honours the annotations.
        notes = dep["spec"]["template"]["metadata"]["annotations"]
        self.assertEqual(notes["prometheus.io/scrape"], "true")
        self.assertEqual(notes["prometheus.io/port"], mport)
        self.assertEqual(notes["prometheus.io/path"], "/metrics")
        self.assertIn("resources", tern)
        for c in containers.values():
            sc = c["securityContext"]
            self.assertTrue(sc["runAsNonRoot"], c["name"])
            self.assertTrue(sc["readOnlyRootFilesystem"], c["name"])
            self.assertFalse(sc["allowPrivilegeEscalation"], c["name"])
            self.assertEqual(sc["capabilities"]["drop"], ["ALL"], c["name"])
        # The drain fits in the grace period, after preStop.
        pre_stop = tern["lifecycle"]["preStop"]["exec"]["command"]
        drain = seconds(args[args.index("--drain-timeout") + 1]) if "--drain-timeout" in args \
            else DEFAULT_DRAIN_S
        self.assertGreater(pod["terminationGracePeriodSeconds"], drain + int(pre_stop[-1]))
        # Secrets: mounted read-only, nobody but owner and group can read.
        volumes = {v["name"]: v for v in pod["volumes"]}
        for name in ("ticket-keys", "tls"):
            secret = volumes[name]["secret"]
            self.assertEqual(secret["defaultMode"] & 0o007, 0, name)
            self.assertIn(("Secret", secret["secretName"]), m)
        self.assertEqual(volumes["ticket-keys"]["secret"]["defaultMode"], 0o440)
        self.assertIn("emptyDir", volumes["run"])
        for c in containers.values():
            mounts = {v["name"]: v["mountPath"] for v in c["volumeMounts"]}
            self.assertEqual(mounts["run"], "/run/tern", c["name"])
        svc = m[("Service", "tern")]
        self.assertEqual(svc["spec"]["ports"][0]["targetPort"], "https")
        self.assertEqual(svc["spec"]["selector"], dep["spec"]["selector"]["matchLabels"])
        # The metrics port (no TLS, no authentication) stays off the
        # load balancer.
        self.assertEqual([p["targetPort"] for p in svc["spec"]["ports"]], ["https"])

    def test_replicas_spread_and_disruptions_bounded(self):
        m = self.manifests()
        dep = m[("Deployment", "tern")]
        labels = dep["spec"]["template"]["metadata"]["labels"]
        self.assertGreaterEqual(dep["spec"]["replicas"], 2)
        # Preferred anti-affinity by node: spread where possible, still
        # scheduled on one node.
        anti = dep["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
        self.assertNotIn("requiredDuringSchedulingIgnoredDuringExecution", anti)
        (term,) = anti["preferredDuringSchedulingIgnoredDuringExecution"]
        self.assertEqual(term["podAffinityTerm"]["topologyKey"], "kubernetes.io/hostname")
        self.assertEqual(term["podAffinityTerm"]["labelSelector"]["matchLabels"], labels)
        self.assertTrue(1 <= term["weight"] <= 100)
        # One pod at least stays through a voluntary disruption, and the
        # budget selects exactly the deployment's pods.
        pdb = m[("PodDisruptionBudget", "tern")]
        self.assertEqual(yaml.safe_load(read("kubernetes", "pdb.yaml"))["apiVersion"],
                         "policy/v1")
        self.assertEqual(pdb["spec"]["minAvailable"], 1)
        self.assertNotIn("maxUnavailable", pdb["spec"])
        self.assertEqual(pdb["spec"]["selector"]["matchLabels"],
                         dep["spec"]["selector"]["matchLabels"])
        self.assertLess(pdb["spec"]["minAvailable"], dep["spec"]["replicas"],
                        "a budget no eviction can meet blocks every node drain")

    def test_probes_answer_as_the_kubelet_expects(self):
        """The deployment's tern arguments, run here, answer its probes as
        the kubelet reads them (2xx or 3xx passes): both pass while it
        serves; readiness fails once a drain began, while a connection
        still holds it open."""
        m = self.manifests()
        tern_c = [c for c in m[("Deployment", "tern")]["spec"]["template"]["spec"]["containers"]
                  if c["name"] == "tern"][0]
        args = self.local_args(tern_c["args"])
        mport = free_port()
        args[args.index("--metrics") + 1] = "127.0.0.1:%d" % mport
        self.port = free_port()
        args[args.index("--listen") + 1] = "127.0.0.1:%d" % self.port
        args[args.index("--backend") + 1] = self.echo_backend().addr
        tern = Tern(self, args)

        def probe(name):
            get = tern_c[name]["httpGet"]
            conn = http.client.HTTPConnection("127.0.0.1", mport,
                                              timeout=tern_c[name]["timeoutSeconds"])
            try:
                conn.request("GET", get["path"])
                return 200 <= conn.getresponse().status < 400
            finally:
                conn.close()
        wait_for(lambda: probe("readinessProbe"), 5, "the readiness probe passing")
        self.assertTrue(probe("livenessProbe"))
        c = self.client().handshake()
        self.assertEqual(c.exchange(b"probed", expect=6), b"probed")
        tern.send_signal(signal.SIGTERM)
        wait_for(lambda: not probe("readinessProbe"), 5, "the readiness probe failing")
        self.assertEqual(c.exchange(b"still", expect=5), b"still")
        c.shut_write("close_notify")
        c.recv_until_close()
        c.close()
        self.assertEqual(tern.wait_exit(), 0)

    def local_args(self, cluster_args):
        """The deployment's tern arguments with the cluster's names and
        paths moved to this machine (a key file made)."""
        cert = self.default_cert()
        keys_dir = os.path.join(self.tmp, "keys")
        os.makedirs(keys_dir, exist_ok=True)
        self.key_file(os.path.join(keys_dir, "ticket.keys"), 0o440)
        args = list(cluster_args)
        args[args.index("--backend") + 1] = "127.0.0.1:8080"
        args[args.index("--cert") + 1] = cert["cert_only"]
        args[args.index("--key") + 1] = cert["key"]
        args[args.index("--ticket-keys") + 1] = os.path.join(keys_dir, "ticket.keys")
        args[args.index("--control") + 1] = os.path.join(self.tmp, "control.sock")
        return args

    def test_deployment_args_pass_tern_check(self):
        m = self.manifests()
        tern = [c for c in m[("Deployment", "tern")]["spec"]["template"]["spec"]["containers"]
                if c["name"] == "tern"][0]
        self.check_args(self.local_args(tern["args"]))

    def make_secret_dir(self, path, files, version):
        """A Secret volume as the kubelet lays it out: files in a versioned
        directory, ..data pointing at it, and a symlink per file through
        ..data. A new version switches ..data atomically (rename)."""
        os.makedirs(path, exist_ok=True)
        data = "..%d" % version
        os.mkdir(os.path.join(path, data))
        for name, (content_path, mode) in files.items():
            target = os.path.join(path, data, name)
            shutil.copy(content_path, target)
            os.chmod(target, mode)
            link = os.path.join(path, name)
            if not os.path.islink(link):
                os.symlink(os.path.join("..data", name), link)
        tmp_link = os.path.join(path, "..data_tmp")
        os.symlink(data, tmp_link)
        os.rename(tmp_link, os.path.join(path, "..data"))

    def test_secret_updates_reach_tern_without_a_sidecar(self):
        """The pod is tern alone: the deployment's own arguments, run here
        with kubelet-style Secret volumes, pick up a Secret update of the
        certificate and of the ticket keys by themselves (--watch)."""
        m = self.manifests()
        containers = m[("Deployment", "tern")]["spec"]["template"]["spec"]["containers"]
        self.assertEqual([c["name"] for c in containers], ["tern"])
        old = self.cert("ec", cn="old.example", name="old")
        new = self.cert("ec", cn="new.example", name="new")
        keys_dir = os.path.join(self.tmp, "keys")
        tls_dir = os.path.join(self.tmp, "tls")
        first = self.key_file(os.path.join(self.tmp, "first.keys"))
        self.make_secret_dir(keys_dir, {"ticket.keys": (first, 0o440)}, 1)
        self.make_secret_dir(tls_dir, {"tls.crt": (old["cert_only"], 0o440),
                                       "tls.key": (old["key"], 0o440)}, 1)
        args = list(containers[0]["args"])
        be = self.echo_backend()
        args[args.index("--backend") + 1] = be.addr
        args[args.index("--cert") + 1] = os.path.join(tls_dir, "tls.crt")
        args[args.index("--key") + 1] = os.path.join(tls_dir, "tls.key")
        args[args.index("--ticket-keys") + 1] = os.path.join(keys_dir, "ticket.keys")
        control = os.path.join(self.tmp, "control.sock")
        args[args.index("--control") + 1] = control
        port = free_port()
        args[args.index("--listen") + 1] = "127.0.0.1:%d" % port
        args[args.index("--metrics") + 1] = "127.0.0.1:%d" % free_port()
        tern = Tern(self, args)

        def served():
            c = self.client(port=port).handshake()
            try:
                der = c.obj.getpeercert(binary_form=True)
                return {der_of(old["cert_only"]): "old", der_of(new["cert_only"]): "new"}.get(der)
            finally:
                c.close()

        def fingerprints():
            return [k["fingerprint"] for k in ctl(control, "keys")["keys"]]
        self.assertEqual(served(), "old")
        before = fingerprints()
        second = self.key_file(os.path.join(self.tmp, "second.keys"))
        self.make_secret_dir(keys_dir, {"ticket.keys": (second, 0o440)}, 2)
        wait_for(lambda: fingerprints() != before, 10, "the new ticket keys taken")
        self.make_secret_dir(tls_dir, {"tls.crt": (new["cert_only"], 0o440),
                                       "tls.key": (new["key"], 0o440)}, 2)
        wait_for(lambda: served() == "new", 10, "the new certificate served")
        self.assertEqual(ctl(control, "stats")["reload_failures"], 0)
        tern.stop_ok()


class TestDockerfile(DeployTestCase):

    def instructions(self):
        lines, pending = [], ""
        for raw in read("Dockerfile").splitlines():
            if raw.strip().startswith("#") and not pending:
                continue
            line = pending + raw.strip()
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            pending = ""
            if line:
                word, _, rest = line.partition(" ")
                lines.append((word.upper(), rest.strip()))
        return lines

    def stages(self):
        stages = []
        for word, rest in self.instructions():
            if word == "FROM":
                stages.append({"from": rest, "lines": []})
            else:
                stages[-1]["lines"].append((word, rest))
        return stages

    @staticmethod
    def packages(stage):
        out = []
        for word, rest in stage["lines"]:
            if word == "RUN" and "apt-get install" in rest:
                part = rest.split("apt-get install", 1)[1].split("&&")[0]
                out += [w for w in part.split() if not w.startswith("-")]
        return out

    def test_stages_user_port_entrypoint(self):
        build, runtime = self.stages()
        self.assertEqual(build["from"], "debian:bookworm AS build")
        self.assertEqual(runtime["from"], "debian:bookworm-slim")
        self.assertEqual(sorted(self.packages(build)),
                         sorted("build-essential cmake pkg-config libssl-dev liburing-dev "
                                "libjemalloc-dev".split()))
        self.assertEqual(sorted(self.packages(runtime)),
                         sorted("libssl3 liburing2 libjemalloc2 ca-certificates".split()))
        final = dict(runtime["lines"])
        user = final["USER"].split(":")
        self.assertTrue(all(u.isdigit() and int(u) != 0 for u in user), final["USER"])
        self.assertEqual(final["EXPOSE"], "8443")
        self.assertEqual(json.loads(final["ENTRYPOINT"]), ["/usr/local/bin/tern"])
        self.assertIn("--from=build", final["COPY"])
        # Every path the build stage copies exists (the context is the repo root).
        for word, rest in build["lines"]:
            if word == "COPY":
                for src in rest.split()[:-1]:
                    self.assertTrue(os.path.exists(os.path.join(ROOT, src)), src)

    def test_packages_exist_and_cover_what_tern_links(self):
        self.require("apt-cache")
        self.require("dpkg")
        with open("/etc/os-release") as f:
            if "VERSION_CODENAME=bookworm" not in f.read():
                self.skipTest("not Debian bookworm: the Dockerfile's package names are bookworm's")
        build, runtime = self.stages()
        for name in self.packages(build) + self.packages(runtime):
            r = subprocess.run(["apt-cache", "show", name], capture_output=True, timeout=60)
            self.assertEqual(r.returncode, 0, "no Debian package %s" % name)
        if is_sanitizer_build(tern_bin()):
            self.skipTest("a sanitizer build links its runtime; the image ships the normal one")
        runtime_pkgs = self.packages(runtime)
        closure = subprocess.run(
            ["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
             "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances"] + runtime_pkgs,
            capture_output=True, text=True, timeout=120).stdout
        provided = set(runtime_pkgs) | {line.strip().split(":", 1)[0] for line in
                                        closure.splitlines() if not line.startswith(" ")}
        provided |= {line.split("Depends:", 1)[1].strip().split(":", 1)[0]
                     for line in closure.splitlines() if "Depends:" in line}
        ldd = subprocess.run(["ldd", tern_bin()], capture_output=True, text=True, timeout=30).stdout
        for line in ldd.splitlines():
            if "=>" not in line or "not found" in line:
                self.assertNotIn("not found", line)
                continue
            lib = os.path.realpath(line.split("=>")[1].split()[0])
            owner = subprocess.run(["dpkg", "-S", lib], capture_output=True, text=True).stdout
            if not owner:
                continue  # not from a package (a local build of a library)
            pkg = owner.split(":")[0]
            self.assertIn(pkg, provided, "%s (%s) comes from no runtime package" % (lib, pkg))


if __name__ == "__main__":
    main()
