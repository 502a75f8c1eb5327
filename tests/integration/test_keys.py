"""`tern keys FILE COMMAND` (SPEC section 2), the real binary: generate,
add, promote, retire, rotate and list with their exact output, the file
they leave (its lines, mode 0600 or the old 0640, its owner), what they
refuse (exit 1, the file untouched) and bad usage (exit 2); then tern
itself: a client keeps resuming across `tern keys FILE rotate` +
`tern ctl rotate-ticket-keys` done again and again, on one instance and
across two instances one edit apart, which is how a fleet sees a rotation
spread. Bare-line files, as written before roles existed, are
test_ticket_keys.py's (they load and resume as they always did) and here
only converted by a first edit.

Times: the file's SINCE values are written relative to the test's clock,
so that messages naming them are exact; what tern keys itself stamps is
checked to lie between the clock read before and after it ran.
"""

import base64
import calendar
import hashlib
import json
import os
import shutil
import stat
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SANITIZER_MARKERS, main, run_ctl  # noqa: E402
from test_tickets import TicketTestCase, TicketWatch, key_line, write_keys  # noqa: E402

HEADER = "# tern ticket keys: ROLE SINCE KEY; edit with tern keys (see tern keys --help)"


def fingerprint(key):
    return hashlib.sha256(key).hexdigest()[:12]


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def age_text(secs):
    """What `tern keys list` prints for an age: 1d2h3m4s, 3h0m0s, 42s."""
    sign = "-" if secs < 0 else ""
    secs = abs(secs)
    d, rest = divmod(secs, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    if d:
        return "%s%dd%dh%dm%ds" % (sign, d, h, m, s)
    if h:
        return "%s%dh%dm%ds" % (sign, h, m, s)
    if m:
        return "%s%dm%ds" % (sign, m, s)
    return "%s%ds" % (sign, s)


def write_roles(path, keys, mode=0o600):
    """keys: (role, unix time, 80 bytes) in file order."""
    write_keys(path, ["%s %s %s\n" % (role, rfc3339(t), base64.b64encode(k).decode())
                      for (role, t, k) in keys], mode)


def read_roles(path):
    """The file's keys as (role, unix time, 80 bytes), asserting the form
    tern writes: its header first, then only ROLE SINCE KEY lines."""
    with open(path) as f:
        lines = f.read().splitlines()
    assert lines and lines[0] == HEADER, lines[:1]
    out = []
    for line in lines[1:]:
        role, since, b64 = line.split(" ")
        t = calendar.timegm(time.strptime(since, "%Y-%m-%dT%H:%M:%SZ"))
        out.append((role, t, base64.b64decode(b64, validate=True)))
    return out


def encrypting(keys):
    (key,) = [k for (role, _, k) in keys if role == "encrypt"]
    return key


class KeysTestCase(TicketTestCase):

    def keys(self, *args, rc=0):
        """Runs `tern keys ARGS...`; asserts the exit status and no
        sanitizer report. Returns (CompletedProcess, clock before, clock
        after) in whole seconds, the interval what it stamped lies in."""
        before = int(time.time())
        r = self.run_tern(["keys"] + list(args))
        after = int(time.time())
        for marker in SANITIZER_MARKERS:
            self.assertNotIn(marker, r.stderr)
        self.assertEqual(r.returncode, rc, "tern keys %s: stdout %r stderr %r"
                         % (" ".join(args), r.stdout, r.stderr))
        return r, before, after

    def refused(self, path, args, message):
        """`tern keys` exits 1 with exactly this message, and the file is
        the same file with the same bytes."""
        before = os.stat(path)
        with open(path, "rb") as f:
            content = f.read()
        r, _, _ = self.keys(*args, rc=1)
        self.assertEqual(r.stderr, "tern keys: %s\n" % message)
        self.assertEqual(r.stdout, "")
        after = os.stat(path)
        self.assertEqual((after.st_ino, after.st_mode), (before.st_ino, before.st_mode))
        with open(path, "rb") as f:
            self.assertEqual(f.read(), content)

    def mode(self, path):
        return stat.S_IMODE(os.stat(path).st_mode)

    def no_temporary_files(self, *names):
        self.assertEqual(sorted(n for n in os.listdir(self.tmp) if not n.endswith(".stderr")
                                and not n.endswith(".stdout") and not n.endswith(".sock")
                                and not n.endswith(".pem")),
                         sorted(names))


class TestKeysCommand(KeysTestCase):

    def test_generate_and_list(self):
        path = os.path.join(self.tmp, "ticket.keys")
        r, t0, t1 = self.keys(path, "generate")
        (role, since, key), = read_roles(path)
        self.assertEqual(role, "encrypt")
        self.assertTrue(t0 <= since <= t1, (t0, since, t1))
        self.assertEqual(len(key), 80)
        self.assertEqual(r.stdout, "added %s as encrypt\n" % fingerprint(key))
        self.assertEqual(r.stderr, "")
        self.assertEqual(self.mode(path), 0o600)
        self.no_temporary_files("ticket.keys")

        # Never over an existing file.
        self.refused(path, [path, "generate"], "%s: exists; never overwritten by generate" % path)

        r, t0, t1 = self.keys(path, "list")
        self.assertIn(r.stdout, ["%s encrypt %s %s\n" % (fingerprint(key), rfc3339(since),
                                                        age_text(now - since))
                                 for now in range(t0, t1 + 1)])
        # tern loads what generate wrote.
        r = self.run_tern(["--check", "--ticket-keys", path, "--cert", self.default_cert()["cert"],
                           "--listen", "127.0.0.1:1"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("ticket_keys=%s (1)" % path, r.stdout)

    def test_add_promote_retire(self):
        now = int(time.time())
        k1, k3 = os.urandom(80), os.urandom(80)
        path = os.path.join(self.tmp, "ticket.keys")
        write_roles(path, [("encrypt", now - 3 * 3600, k1), ("decrypt", now - 5 * 3600, k3)],
                    mode=0o640)

        r, t0, t1 = self.keys(path, "add")
        keys = read_roles(path)
        self.assertEqual([role for (role, _, _) in keys], ["encrypt", "staged", "decrypt"])
        _, staged_since, k2 = keys[1]
        self.assertTrue(t0 <= staged_since <= t1)
        self.assertEqual(r.stdout, "added %s as staged\n" % fingerprint(k2))
        self.assertEqual(self.mode(path), 0o640, "the group's read bit is kept")

        r, t0, t1 = self.keys(path, "promote")
        self.assertEqual(r.stdout,
                         "promoted %s (staged since %s) to encrypt\n"
                         "demoted %s (encrypt since %s) to decrypt\n"
                         % (fingerprint(k2), rfc3339(staged_since), fingerprint(k1),
                            rfc3339(now - 3 * 3600)))
        keys = read_roles(path)
        self.assertEqual([(role, k) for (role, _, k) in keys],
                         [("encrypt", k2), ("decrypt", k1), ("decrypt", k3)])
        self.assertTrue(all(t0 <= t <= t1 for (_, t, _) in keys[:2]))
        demoted_since = keys[1][1]

        # Nothing staged now.
        self.refused(path, [path, "promote"], "%s: no staged key to promote (add stages one)" % path)

        # The oldest decrypt key goes first, then the next; never the last.
        r, _, _ = self.keys(path, "retire")
        self.assertEqual(r.stdout, "retired %s (decrypt since %s)\n"
                         % (fingerprint(k3), rfc3339(now - 5 * 3600)))
        r, _, _ = self.keys(path, "retire")
        self.assertEqual(r.stdout, "retired %s (decrypt since %s)\n"
                         % (fingerprint(k1), rfc3339(demoted_since)))
        self.refused(path, [path, "retire"],
                     "%s: no decrypt key to retire: the encrypting key and staged keys are never "
                     "retired" % path)
        self.assertEqual([(role, k) for (role, _, k) in read_roles(path)], [("encrypt", k2)])
        self.assertEqual(self.mode(path), 0o640)
        self.no_temporary_files("ticket.keys")

    def test_rotate(self):
        now = int(time.time())
        k1, k2, k3, k4 = (os.urandom(80) for _ in range(4))
        path = os.path.join(self.tmp, "ticket.keys")
        layout = [("encrypt", now - 3600, k1), ("staged", now - 3600, k2),
                  ("decrypt", now - 3 * 3600, k3), ("decrypt", now - 1800, k4)]
        write_roles(path, layout)

        # The default lifetime, 2h: k3 (decrypt for 3h) goes, k4 stays.
        r, t0, t1 = self.keys(path, "rotate")
        keys = read_roles(path)
        self.assertEqual([role for (role, _, _) in keys], ["encrypt", "staged", "decrypt", "decrypt"])
        self.assertEqual([k for (_, _, k) in keys[:1] + keys[2:]], [k2, k1, k4])
        new = keys[1][2]
        self.assertNotIn(new, (k1, k2, k3, k4))
        self.assertEqual(r.stdout,
                         "promoted %s (staged since %s) to encrypt\n"
                         "demoted %s (encrypt since %s) to decrypt\n"
                         "retired %s (decrypt since %s)\n"
                         "added %s as staged\n"
                         % (fingerprint(k2), rfc3339(now - 3600), fingerprint(k1),
                            rfc3339(now - 3600), fingerprint(k3), rfc3339(now - 3 * 3600),
                            fingerprint(new)))
        self.assertTrue(all(t0 <= t <= t1 for (_, t, _) in keys[:3]))

        # --lifetime 20m: k4 (decrypt for 30m) goes too.
        write_roles(path, layout)
        r, _, _ = self.keys(path, "rotate", "--lifetime", "20m")
        self.assertEqual([k for (_, _, k) in read_roles(path)][2:], [k1])
        self.assertEqual(r.stdout.splitlines()[2:4],
                         ["retired %s (decrypt since %s)" % (fingerprint(k3), rfc3339(now - 3 * 3600)),
                          "retired %s (decrypt since %s)" % (fingerprint(k4), rfc3339(now - 1800))])

        # A fresh file: the first rotate only stages, the second switches.
        fresh = os.path.join(self.tmp, "fresh.keys")
        self.keys(fresh, "generate")
        first = encrypting(read_roles(fresh))
        r, _, _ = self.keys(fresh, "rotate")
        keys = read_roles(fresh)
        self.assertEqual([(role, k) for (role, _, k) in keys][0], ("encrypt", first))
        self.assertEqual(r.stdout, "added %s as staged\n" % fingerprint(keys[1][2]))
        r, _, _ = self.keys(fresh, "rotate")
        self.assertEqual(encrypting(read_roles(fresh)), keys[1][2])
        self.assertEqual(len(r.stdout.splitlines()), 3)
        self.no_temporary_files("ticket.keys", "fresh.keys")

    def test_bare_file_is_converted_by_its_first_edit(self):
        k1, k2 = os.urandom(80), os.urandom(80)
        path = os.path.join(self.tmp, "nginx.keys")
        write_keys(path, [key_line(k1), key_line(k2)])
        r, _, _ = self.keys(path, "list")
        self.assertEqual(r.stdout, "%s encrypt unknown -\n%s decrypt unknown -\n"
                         % (fingerprint(k1), fingerprint(k2)))
        r, t0, t1 = self.keys(path, "rotate")
        keys = read_roles(path)
        self.assertEqual([(role, k) for (role, _, k) in keys][::2], [("encrypt", k1), ("decrypt", k2)])
        self.assertEqual(keys[1][0], "staged")
        self.assertTrue(all(t0 <= t <= t1 for (_, t, _) in keys))
        self.assertEqual(r.stdout, "converted 2 bare keys to roles: %s encrypt, 1 decrypt\n"
                         "added %s as staged\n" % (fingerprint(k1), fingerprint(keys[1][2])))

    def test_refuses_what_tern_refuses(self):
        good = os.path.join(self.tmp, "good.keys")
        self.keys(good, "generate")
        os.chmod(good, 0o644)
        self.refused(good, [good, "rotate"], "%s: readable by other users (mode 0644); chmod 600 "
                     "or 640 it" % good)
        os.chmod(good, 0o602)
        self.refused(good, [good, "add"], "%s: writable by other users (mode 0602); chmod 600 or "
                     "640 it" % good)
        mixed = os.path.join(self.tmp, "mixed.keys")
        write_keys(mixed, ["encrypt %s %s\n" % (rfc3339(time.time()), key_line().strip()),
                           "# a comment\n", key_line()])
        self.refused(mixed, [mixed, "rotate"], "%s:3: mixes bare keys and ROLE SINCE KEY lines "
                     "(line 1 has the other form)" % mixed)
        two = os.path.join(self.tmp, "two.keys")
        write_roles(two, [("encrypt", 0, os.urandom(80)), ("encrypt", 0, os.urandom(80))])
        self.refused(two, [two, "list"], "%s:2: a second encrypt key (line 1 encrypts): exactly "
                     "one key encrypts" % two)
        missing = os.path.join(self.tmp, "missing.keys")
        r, _, _ = self.keys(missing, "add", rc=1)
        self.assertEqual(r.stderr, "tern keys: %s: cannot open: No such file or directory\n" % missing)
        self.assertFalse(os.path.exists(missing))

    def test_owner_and_group_kept_as_root(self):
        if os.geteuid() != 0:
            self.skipTest("chown needs root")
        path = os.path.join(self.tmp, "ticket.keys")
        self.keys(path, "generate")
        os.chmod(path, 0o640)
        os.chown(path, 4242, 4243)
        self.keys(path, "rotate")
        st = os.stat(path)
        self.assertEqual((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)), (4242, 4243, 0o640))

    def test_usage(self):
        r, _, _ = self.keys("--help")
        self.assertTrue(r.stdout.startswith("Usage: tern keys FILE COMMAND\n"), r.stdout)
        for cmd in ("generate", "add", "promote", "retire", "rotate", "list", "--lifetime"):
            self.assertIn("  " + cmd, r.stdout)
        for args, message in (
                ([], "missing FILE (see tern keys --help)"),
                (["f"], "missing COMMAND (expected generate, add, promote, retire, rotate or list)"),
                (["f", "rotat"], "unknown command 'rotat' (expected generate, add, promote, "
                                 "retire, rotate or list)"),
                (["f", "rotate", "--lifetime", "7200"],
                 "--lifetime: invalid value '7200' (expected a duration with a unit such as 30m or 2h)"),
                (["f", "add", "--lifetime", "2h"], "--lifetime: only rotate takes it"),
                (["f", "list", "now"], "list: unexpected argument 'now'")):
            r, _, _ = self.keys(*args, rc=2)
            self.assertEqual(r.stderr, "tern keys: %s\n" % message)
            self.assertEqual(r.stdout, "")
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "f")))
        # tern's own --help points to it.
        r = self.run_tern(["--help"])
        self.assertEqual(r.returncode, 0)
        self.assertIn("\n       tern keys FILE generate|add|promote|retire|rotate|list "
                      "(see tern keys --help)\n", r.stdout)


class TestResumptionAcrossRotations(KeysTestCase):

    ROUNDS = 5

    def ctl_rotate(self, tern):
        """`tern ctl rotate-ticket-keys` as an operator runs it: the reply."""
        r = run_ctl(self, ["--control", tern.control_path(), "--json", "rotate-ticket-keys"])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return json.loads(r.stdout)

    def resume(self, watch, session, port=None):
        """A reconnect offering session: asserts it resumed, waits for the
        fresh ticket tern sends after it, returns the connection."""
        c = self.conn(watch, session=session, port=port)
        self.assertTrue(c.resumed(), "a reconnect did not resume")
        c.wait_tickets(1)
        self.assertEqual(c.c.exchange(b"again", expect=5), b"again")
        return c

    def test_one_instance(self):
        path = os.path.join(self.tmp, "ticket.keys")
        self.keys(path, "generate")
        be = self.echo_backend()
        tern = self.tern_ctl([be], ["--ticket-keys", path])
        watch = TicketWatch()
        first = self.full_then_session(watch)
        session = first.session()
        first.close()
        reconnects = 0
        for n in range(self.ROUNDS):
            self.keys(path, "rotate")
            keys = read_roles(path)
            reply = self.ctl_rotate(tern)
            # tern encrypts with the file's encrypt key (the one the
            # previous rotate staged), never with the staged one.
            self.assertEqual(reply["keys"], len(keys), reply)
            self.assertEqual(reply["encrypting_key"], encrypting(keys)[:16].hex(), reply)
            c = self.resume(watch, session)
            reconnects += 1
            self.assertEqual(c.ticket_key_names(), [encrypting(keys)[:16].hex()])
            session = c.session()
            c.close()
        # Every rotate after the first switched keys: ROUNDS - 1 of them.
        self.assertEqual(len(read_roles(path)), 2 + self.ROUNDS - 1)
        stats = tern.stats()
        self.assertEqual((stats["handshakes_full"], stats["handshakes_resumed"]), (1, reconnects))
        self.assertEqual(reconnects, self.ROUNDS)
        self.finish(tern)

    def test_two_instances_one_edit_apart(self):
        """Instance B gets every edit first; A gets it one step later, as a
        fleet's copies of the file do. A client alternating between them
        with its newest ticket resumes every time, at every step."""
        path_a = os.path.join(self.tmp, "a.keys")
        path_b = os.path.join(self.tmp, "b.keys")
        self.keys(path_b, "generate")
        shutil.copyfile(path_b, path_a)
        os.chmod(path_a, 0o600)
        be = self.echo_backend()
        a = self.tern_ctl([be], ["--ticket-keys", path_a])
        port_a = self.port
        b = self.tern_ctl([be], ["--ticket-keys", path_b])
        port_b = self.port
        watch = TicketWatch()
        first = self.full_then_session(watch, port=port_a)
        session = first.session()
        first.close()
        reconnects = 0

        def both_ways():
            nonlocal session, reconnects
            for port in (port_b, port_a, port_b):
                c = self.resume(watch, session, port=port)
                reconnects += 1
                session = c.session()
                c.close()

        for n in range(self.ROUNDS):
            self.keys(path_b, "rotate")
            self.ctl_rotate(b)
            both_ways()  # B one edit ahead of A
            tmp = path_a + ".new"
            shutil.copyfile(path_b, tmp)
            os.chmod(tmp, 0o600)
            os.replace(tmp, path_a)
            self.ctl_rotate(a)
            both_ways()  # both on the same edit
        resumed = a.stats()["handshakes_resumed"] + b.stats()["handshakes_resumed"]
        full = a.stats()["handshakes_full"] + b.stats()["handshakes_full"]
        self.assertEqual((full, resumed), (1, reconnects))
        self.assertEqual(reconnects, self.ROUNDS * 6)

        # The same test catches a broken rotation: a key that encrypts on
        # B before A has it leaves B's tickets unreadable on A.
        write_keys(path_b, [key_line()])
        self.ctl_rotate(b)
        c = self.conn(watch, session=session, port=port_b)
        self.assertFalse(c.resumed(), "B still had the old keys")
        c.wait_tickets(2)
        d = self.conn(watch, session=c.session(), port=port_a)
        self.assertFalse(d.resumed(), "A resumed a ticket under a key it never had")
        self.finish(a, [d])
        self.finish(b, [c])


if __name__ == "__main__":
    main()
