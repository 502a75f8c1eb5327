"""The fleet (issue 13): three tern instances share one ticket-key file
and one certificate, as the pods of a Deployment share a Secret. A client
keeps reconnecting, round-robin over the instances, each time with the
newest ticket it was given, while the test rotates the shared keys with
`tern keys FILE rotate` several times (nobody tells the instances: they
watch the file) and swaps the certificate the way the kubelet does. Every
reconnect after the first resumes; the new certificate is served by all
three within seconds; a broken certificate swapped in leaves all three
serving the previous one, each with one failed reload counted."""

import os
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (check_sanitizers_at_cleanup, main, scaled, tern_bin,  # noqa: E402
                     wait_for)
from test_tickets import TicketTestCase, TicketWatch  # noqa: E402
from test_watch import der_of, kubelet_update  # noqa: E402

INSTANCES = 3
ROTATIONS = 4


class TestFleet(TicketTestCase):

    def setUp(self):
        super().setUp()
        check_sanitizers_at_cleanup(self)
        self.ids = {name: self.cert("ec", cn="%s.example" % name, name=name)
                    for name in ("one", "two")}
        self.ders = {der_of(i["cert"]): name for name, i in self.ids.items()}
        self.vol = os.path.join(self.tmp, "secret")
        os.mkdir(self.vol)

    # --- the shared files
    def keys(self, *args):
        r = subprocess.run([tern_bin(), "keys", self.keyfile] + list(args),
                           capture_output=True, text=True, timeout=scaled(10))
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def kubelet_update(self, pem_text):
        kubelet_update(self.vol, {"tls.pem": pem_text})

    def pem(self, name):
        with open(self.ids[name]["cert"]) as f:
            return f.read()

    # --- the instances
    def start_fleet(self):
        self.keyfile = os.path.join(self.tmp, "ticket.keys")
        self.keys("generate")
        self.kubelet_update(self.pem("one"))
        os.symlink("..data/tls.pem", os.path.join(self.vol, "tls.pem"))
        be = self.echo_backend()
        self.terns, self.ports = [], []
        for i in range(INSTANCES):
            ctl = os.path.join(self.tmp, "control-%d.sock" % i)
            t = self.start_tern([be], cert=os.path.join(self.vol, "tls.pem"), workers=2,
                                extra=["--ticket-keys", self.keyfile, "--control", ctl])
            self.terns.append(t)
            self.ports.append(self.port)

    def reloads(self, tern):
        return sum(1 for line in tern.lines() if " info reloaded: generation " in line)

    def file_keys(self):
        """[(fingerprint, role)] of the key file, as `tern keys list` says."""
        return [tuple(line.split()[:2]) for line in self.keys("list").splitlines()]

    def instance_keys(self, tern):
        """[(fingerprint, role)] an instance holds, as `tern ctl keys` says."""
        reply = tern.ctl("keys")
        self.assertTrue(reply["ok"], reply)
        return [(k["fingerprint"], k["role"]) for k in reply["keys"]]

    def wait_all_converged(self):
        """Until every instance holds exactly the file's keys, in the same
        roles: the fleet has taken the edit (what an operator watches)."""
        want = sorted(self.file_keys())
        for i, t in enumerate(self.terns):
            wait_for(lambda: sorted(self.instance_keys(t)) == want, 10,
                     "instance %d holds the file's keys %s" % (i, want))

    def served(self, port):
        c = self.client(port).handshake()
        try:
            return self.ders.get(c.obj.getpeercert(binary_form=True), "unknown")
        finally:
            c.close()

    # --- the client
    def reconnect_loop(self, stop, results):
        """Reconnects round-robin with the newest ticket until stop is
        set; results gets (instance, resumed) per connection, or the
        exception that ended the loop."""
        watch = TicketWatch()
        session, i = None, 0
        try:
            while not stop.is_set():
                port = self.ports[i % INSTANCES]
                conn = self.conn(watch, session=session, port=port)
                results.append((i % INSTANCES, conn.resumed()))
                self.assertEqual(conn.c.exchange(b"fleet", expect=5), b"fleet")
                # The ticket this connection is given (a resumption is
                # answered with a fresh one under the encrypting key).
                before = conn.tickets()
                conn.wait_tickets(before + 1 if before == 0 else before, timeout=5)
                session = conn.session()
                conn.close()
                i += 1
        except Exception as e:  # reported by the main thread
            results.append(e)

    def test_resumption_survives_every_rotation_and_a_certificate_swap(self):
        self.start_fleet()
        stop, results = threading.Event(), []
        client = threading.Thread(target=self.reconnect_loop, args=(stop, results))
        client.start()
        self.addCleanup(client.join, scaled(30))
        self.addCleanup(stop.set)

        def connections():
            return len([r for r in results if isinstance(r, tuple)])
        try:
            for n in range(1, ROTATIONS + 1):
                # A few reconnects under the current keys, then an edit.
                base = connections()
                wait_for(lambda: connections() >= base + INSTANCES or
                         any(isinstance(r, Exception) for r in results), 20,
                         "reconnects before rotation %d" % n)
                out = self.keys("rotate")
                self.assertTrue(out.strip(), "tern keys rotate printed nothing")
                self.wait_all_converged()
            base = connections()
            wait_for(lambda: connections() >= base + 2 * INSTANCES or
                     any(isinstance(r, Exception) for r in results), 20,
                     "reconnects after the last rotation")
        finally:
            stop.set()
            client.join(scaled(30))
        errors = [r for r in results if isinstance(r, Exception)]
        if errors:
            raise errors[0]
        resumed = [r for (_, r) in results[1:]]
        print("fleet: %d of %d reconnects after the first resumed across %d rotations"
              % (sum(resumed), len(resumed), ROTATIONS), file=sys.stderr)
        self.assertFalse(results[0][1], "the first connection cannot resume")
        self.assertEqual(sum(resumed), len(resumed), "reconnects that did not resume: %s"
                         % [i for i, (_, r) in enumerate(results[1:], 1) if not r])
        self.assertGreaterEqual(len(resumed), (ROTATIONS + 2) * INSTANCES - 1)
        # Every instance resumed the others' tickets.
        for i, t in enumerate(self.terns):
            self.assertGreater(t.stats()["handshakes_resumed"], 0, "instance %d" % i)

        # The certificate: a kubelet swap reaches all three.
        reloads = [self.reloads(t) for t in self.terns]
        self.kubelet_update(self.pem("two"))
        for i, port in enumerate(self.ports):
            wait_for(lambda: self.served(port) == "two", 10, "instance %d serves two" % i)
        for i, t in enumerate(self.terns):
            wait_for(lambda: self.reloads(t) == reloads[i] + 1, 5, "instance %d reload" % i)
        # A broken one swapped in: all three keep serving "two".
        self.kubelet_update("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n")
        for i, t in enumerate(self.terns):
            wait_for(lambda: t.stats()["reload_failures"] == 1, 10,
                     "instance %d counts the failed reload" % i)
        for port in self.ports:
            self.assertEqual(self.served(port), "two")
        for t in self.terns:
            t.stop_ok()


if __name__ == "__main__":
    main()
