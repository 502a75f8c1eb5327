"""Certificates for tern's integration tests, made with the openssl CLI
(part of harness.py, which re-exports every name here).
"""

import os
import subprocess


# ------------------------------------------------------------------ certs

def _openssl(args, cwd):
    r = subprocess.run(["openssl"] + args, cwd=cwd, capture_output=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("openssl %s failed: %s"
                           % (" ".join(args), r.stderr.decode(errors="replace")))


# Files the tests write (combined cert+key PEMs, key files) stay private,
# as tern requires of any file holding a private key or ticket keys.
os.umask(0o077)

def make_cert(directory, kind="ec", cn="localhost", sans=("DNS:localhost", "IP:127.0.0.1"),
              combined=True, name=None):
    """Makes a self-signed certificate with the openssl CLI.

    kind: "ec" (P-256) or "rsa" (2048 bits). Returns a dict with "cert" (the
    PEM with certificate and, when combined, the key), "key" (the key file)
    and "cert_only" (certificate without key)."""
    name = name or "%s-%s" % (kind, cn.replace("*", "star"))
    key = os.path.join(directory, name + ".key")
    crt = os.path.join(directory, name + ".crt")
    if kind == "ec":
        _openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                  "-out", key], directory)
    elif kind == "rsa":
        _openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                  "-out", key], directory)
    else:
        raise ValueError(kind)
    _openssl(["req", "-new", "-x509", "-key", key, "-out", crt, "-days", "30",
              "-subj", "/CN=" + cn, "-addext", "subjectAltName=" + ",".join(sans)], directory)
    out = {"key": key, "cert_only": crt}
    if combined:
        pem = os.path.join(directory, name + ".pem")
        with open(pem, "wb") as f, open(crt, "rb") as c, open(key, "rb") as k:
            f.write(c.read())
            f.write(k.read())
        out["cert"] = pem
    else:
        out["cert"] = crt
    return out
