#!/usr/bin/env python3
"""`cmake --install BUILD --prefix TMP` puts in place the binary
(bin/tern), both man pages (share/man/man8/tern.8, tern-ctl.8) and the
systemd units (lib/systemd/system/tern.service, tern.socket); the
service points at the installed binary and at the man page, and the
installed tern and man pages work."""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build", required=True, help="the build directory to install from")
    args = ap.parse_args()
    failures = []
    prefix = tempfile.mkdtemp(prefix="tern-install-")
    try:
        r = subprocess.run(["cmake", "--install", args.build, "--prefix", prefix],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print("FAIL: cmake --install: exit %d\n%s%s" % (r.returncode, r.stdout, r.stderr),
                  file=sys.stderr)
            return 1
        want = {
            "bin/tern": 0o755,
            "share/man/man8/tern.8": 0o644,
            "share/man/man8/tern-ctl.8": 0o644,
            "lib/systemd/system/tern.service": 0o644,
            "lib/systemd/system/tern.socket": 0o644,
        }
        for rel, mode in want.items():
            path = os.path.join(prefix, rel)
            if not os.path.isfile(path):
                failures.append("missing %s" % rel)
            elif os.stat(path).st_mode & 0o777 != mode:
                failures.append("%s: mode %o, want %o" % (rel, os.stat(path).st_mode & 0o777, mode))
        # Nothing else: tern-docgen and the tests are not installed.
        installed = sorted(os.path.relpath(os.path.join(d, f), prefix)
                           for d, _, files in os.walk(prefix) for f in files)
        extra = [p for p in installed if p not in want]
        if extra:
            failures.append("installed but not expected: %s" % extra)

        service = os.path.join(prefix, "lib/systemd/system/tern.service")
        if os.path.isfile(service):
            with open(service) as f:
                text = f.read()
            tern = os.path.join(prefix, "bin/tern")
            exec_lines = [l for l in text.splitlines() if l.startswith(("ExecStart=", "ExecReload="))]
            if len(exec_lines) != 2 or not all(l.split("=", 1)[1].startswith(tern + " ")
                                               for l in exec_lines):
                failures.append("tern.service does not run %s: %s" % (tern, exec_lines))
            if "/usr/local/bin/tern" in text:
                failures.append("tern.service still names /usr/local/bin/tern")
            doc = [l for l in text.splitlines() if l.startswith("Documentation=")]
            if not doc or "man:tern(8)" not in doc[0].split("=", 1)[1].split():
                failures.append("tern.service: no Documentation=man:tern(8): %s" % doc)

        tern = os.path.join(prefix, "bin/tern")
        if os.path.isfile(tern):
            r = subprocess.run([tern, "--version"], capture_output=True, text=True)
            if r.returncode != 0 or not r.stdout.startswith("tern "):
                failures.append("installed tern --version: exit %d %r" % (r.returncode, r.stdout))
        # man finds the installed pages by name, as an operator types it.
        env = dict(os.environ, MANPATH=os.path.join(prefix, "share/man"), MANWIDTH="80")
        for page in ("tern", "tern-ctl"):
            r = subprocess.run(["man", "-w", "8", page], capture_output=True, text=True, env=env)
            if r.returncode != 0 or not r.stdout.strip().startswith(prefix):
                failures.append("man -w 8 %s with MANPATH=%s/share/man: %r %r"
                                % (page, prefix, r.stdout, r.stderr))
    finally:
        shutil.rmtree(prefix, ignore_errors=True)
    for f in failures:
        print("FAIL: " + f, file=sys.stderr)
    if not failures:
        print("ok: installed %s" % ", ".join(sorted(want)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
