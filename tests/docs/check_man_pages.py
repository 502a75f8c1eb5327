#!/usr/bin/env python3
"""The man pages the build writes (build/man/tern.8, tern-ctl.8) render
without a single warning from groff or man, name every flag of the flag
table and every control command, and are what tern-docgen writes now
(so a stale build/man cannot pass)."""
import argparse
import os
import re
import subprocess
import sys


def render(cmd, env=None):
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    return r.returncode, r.stdout, r.stderr


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--man-dir", required=True)
    ap.add_argument("--docgen", required=True)
    ap.add_argument("--tern", required=True)
    args = ap.parse_args()
    failures = []

    env = dict(os.environ, MANWIDTH="80", LANG="C.UTF-8", LC_ALL="C.UTF-8")
    pages = {"tern.8": "man-tern", "tern-ctl.8": "man-ctl"}
    rendered = {}
    for page, what in pages.items():
        path = os.path.join(args.man_dir, page)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        fresh = render([args.docgen, what])[1]
        if text != fresh:
            failures.append("%s differs from `tern-docgen %s`: rebuild" % (path, what))
        # -ww: every warning groff has; -z: no output, warnings only.
        rc, _, err = render(["groff", "-man", "-Tutf8", "-ww", "-z", path], env)
        if rc != 0 or err:
            failures.append("groff -man -ww on %s: exit %d\n%s" % (page, rc, err))
        rc, out, err = render(["man", "--warnings", "-E", "UTF-8", "-l", path], env)
        if rc != 0 or err:
            failures.append("man --warnings -l %s: exit %d\n%s" % (page, rc, err))
        rendered[page] = out
        for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "ENVIRONMENT",
                        "FILES", "SEE ALSO"):
            if not re.search(r"^%s$" % section, out, re.M):
                failures.append("%s: no %s section" % (page, section))

    # Every long flag --help lists is in tern(8), and vice versa.
    usage = subprocess.run([args.tern, "--help"], capture_output=True, text=True, check=True).stdout
    help_flags = set(re.findall(r"^  (?:-\w, )?\s*(--[a-z-]+|-vv)", usage, re.M))
    man_flags = set(re.findall(r"^       (?:-\w, )?(--[a-z-]+|-vv)", rendered["tern.8"], re.M))
    if not help_flags or help_flags != man_flags:
        failures.append("tern --help and tern(8) list different flags: only in --help %s, only in the "
                        "man page %s" % (sorted(help_flags - man_flags), sorted(man_flags - help_flags)))
    if "SIGNALS" not in rendered["tern.8"] or "SIGHUP" not in rendered["tern.8"]:
        failures.append("tern.8: no SIGNALS section with SIGHUP")

    # Every command `tern ctl --help` lists is in tern-ctl(8).
    ctl_usage = subprocess.run([args.tern, "ctl", "--help"], capture_output=True, text=True,
                               check=True).stdout
    commands = re.findall(r"^  ([a-z-]+)(?: |$)", ctl_usage.split("\nCommands:\n", 1)[1], re.M)
    man_commands = re.findall(r"^       ([a-z-]+)(?: |$)", rendered["tern-ctl.8"].split("\nCOMMANDS\n", 1)[1]
                              .split("\nEXIT STATUS\n", 1)[0], re.M)
    if not commands or commands != man_commands:
        failures.append("tern ctl --help lists %s, tern-ctl(8) %s" % (commands, man_commands))

    for f in failures:
        print("FAIL: " + f, file=sys.stderr)
    if not failures:
        print("ok: %s render cleanly; %d flags, %d commands" % (", ".join(pages), len(help_flags),
                                                                 len(commands)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
