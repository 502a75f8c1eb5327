"""tern's TLS defaults audited by testssl.sh (Debian package testssl.sh,
command `testssl`): protocols (-p), cipher categories (-s), forward
secrecy (-f), server preferences (-P) and the vulnerability checks (-U:
Heartbleed, CCS, Ticketbleed, ROBOT, renegotiation, CRIME, BREACH, POODLE,
fallback SCSV, SWEET32, FREAK, DROWN, LOGJAM, BEAST, LUCKY13, RC4) against
tern started with no TLS flags at all (its embedded self-signed
certificate, default versions, ciphers and groups) in front of an HTTP
backend. The JSON report is parsed and the test fails on any finding rated
MEDIUM, HIGH or CRITICAL (or a scan WARN/FATAL), on SSLv2, SSLv3, TLS 1.0
or 1.1 offered, on NULL, anonymous, export, LOW (DES, RC2, RC4), 3DES or
CBC ciphers, on client-initiated renegotiation or TLS compression. About
40 s. Skipped, saying so, when testssl.sh is not installed (CI installs
it)."""

import json
import os
import shutil
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import HTTPBackend, TernTestCase, check_sanitizers_at_cleanup, main, scaled  # noqa: E402

TESTSSL = shutil.which("testssl") or shutil.which("testssl.sh")
BAD_SEVERITIES = ("MEDIUM", "HIGH", "CRITICAL")

# finding id -> what its finding must start with. Each must be in the
# report: a scan that silently skipped a check does not pass.
EXPECTED = {
    "SSLv2": "not offered",
    "SSLv3": "not offered",
    "TLS1": "not offered",
    "TLS1_1": "not offered",
    "TLS1_2": "offered",
    "TLS1_3": "offered",
    "cipherlist_NULL": "not offered",
    "cipherlist_aNULL": "not offered",
    "cipherlist_EXPORT": "not offered",
    "cipherlist_LOW": "not offered",          # 64-bit, DES, RC2, RC4
    "cipherlist_3DES_IDEA": "not offered",
    "cipherlist_AVERAGE": "not offered",      # obsolete CBC ciphers
    "cipherlist_STRONG": "offered",           # AEAD only
    "PFS": "offered",
    "heartbleed": "not vulnerable",
    "CCS": "not vulnerable",
    "ticketbleed": "not vulnerable",
    "ROBOT": "not vulnerable",
    "secure_renego": "supported",
    "secure_client_renego": "not vulnerable",  # client-initiated renegotiation refused
    "CRIME_TLS": "not vulnerable",             # no TLS compression
    "POODLE_SSL": "not vulnerable",
    "SWEET32": "not vulnerable",
    "FREAK": "not vulnerable",
    "DROWN": "not vulnerable",
    "LOGJAM": "not vulnerable",
    "BEAST": "not vulnerable",
    "LUCKY13": "not vulnerable",
    "RC4": "not vulnerable",
}


@unittest.skipUnless(TESTSSL, "testssl.sh is not installed (Debian package testssl.sh; "
                              ".ci/run installs it): the TLS audit was not run")
class TestTestssl(TernTestCase):

    def setUp(self):
        super().setUp()
        check_sanitizers_at_cleanup(self)

    def test_defaults_pass_testssl(self):
        http = HTTPBackend(self, b"hello from the backend\n")
        # No --cert, --ciphers, --ciphersuites, --groups, --tls-min/max:
        # what a user gets without asking.
        tern = self.start_tern([http.addr], cert=None, workers=1, access_log=False)
        report = os.path.join(self.tmp, "testssl.json")
        cmd = [TESTSSL, "--warnings", "off", "--quiet", "--color", "0", "--ip", "one",
               "--connect-timeout", "10", "--openssl-timeout", "10",
               "-p", "-s", "-f", "-P", "-U", "--jsonfile", report,
               "127.0.0.1:%d" % self.port]
        t0 = time.monotonic()
        try:
            r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               errors="replace", timeout=scaled(180), cwd=self.tmp)
        except subprocess.TimeoutExpired as e:
            self.fail("testssl did not finish within %.0fs; output so far:\n%s"
                      % (scaled(180), e.stdout))
        elapsed = time.monotonic() - t0
        sys.stderr.write("testssl took %.1fs\n" % elapsed)
        self.assertTrue(os.path.exists(report),
                        "testssl wrote no JSON (exit %d):\n%s\n%s"
                        % (r.returncode, r.stdout[-3000:], r.stderr[-2000:]))
        with open(report) as f:
            findings = json.load(f)
        self.assertIsInstance(findings, list)
        by_id = {}
        for item in findings:
            by_id.setdefault(item["id"], []).append(item)
        text = "\n".join("%s %s %s" % (x["id"], x["severity"], x["finding"]) for x in findings)

        bad = [x for x in findings if x["severity"] in BAD_SEVERITIES + ("WARN", "FATAL")]
        self.assertEqual(bad, [], "testssl findings rated %s, or scan problems:\n%s"
                         % ("/".join(BAD_SEVERITIES), text))
        for fid, want in EXPECTED.items():
            with self.subTest(id=fid):
                self.assertIn(fid, by_id, "testssl reported nothing for %s:\n%s" % (fid, text))
                for item in by_id[fid]:
                    self.assertTrue(item["finding"].startswith(want),
                                    "%s: %r, expected %r" % (fid, item["finding"], want))
        # No legacy or weak cipher named anywhere: the forward-secrecy and
        # preference lists name every cipher tern accepted.
        offered = " ".join(x["finding"] for x in findings
                           if x["id"] in ("PFS_ciphers", "cipherorder_TLSv1_2",
                                          "cipherorder_TLSv1_3"))
        self.assertTrue(offered, "testssl listed no ciphers:\n" + text)
        for weak in ("NULL", "anon", "ADH", "AECDH", "EXP", "RC4", "DES", "IDEA", "CBC", "SHA1",
                     "-SHA ", "RSA-AES", "CAMELLIA", "ARIA", "SEED", "PSK", "SRP"):
            self.assertNotIn(weak, offered + " ", "weak cipher %s offered: %s" % (weak, offered))
        self.assertNotIn("TLS1_3 not offered", text)
        self.assertEqual(tern.proc.poll(), None, "tern died under testssl")
        self.assertLess(elapsed, scaled(150), "testssl took %.0fs" % elapsed)
        counters = tern.stop_ok()
        self.assertGreater(counters["handshakes_full"], 0)


if __name__ == "__main__":
    main()
