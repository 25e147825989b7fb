"""The throwaway certificate every TLS peer serves (the same one for all: same key type, same
signature cost per handshake). Made with the `openssl` command (./dev setup installs it)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def make_cert(directory: Path) -> tuple[Path, Path]:
    """Writes cert.pem and key.pem (EC P-256, self-signed for localhost and 127.0.0.1, valid
    30 days) into `directory` unless they are there already; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "cert.pem", directory / "key.pem"
    if cert.is_file() and key.is_file():
        return cert, key
    cmd = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
           "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "30",
           "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise RuntimeError("the TLS peers need a certificate and `openssl` is not installed "
                           "(./dev setup installs it)") from None
    if res.returncode != 0:
        raise RuntimeError(f"openssl req failed: {res.stderr.strip()[-300:]}")
    return cert, key
