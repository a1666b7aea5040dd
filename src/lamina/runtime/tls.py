"""lamina's own certificate authority and the server certificate of its public API names.

At first start with a data plane, lamina makes a CA (``<data_dir>/tls/ca.pem``, its key readable by
root only) with the ``openssl`` command, and a server certificate signed by it for every name and
address :func:`lamina.domain.endpoints.certificate_names` lists (AWS's service names in every
region, interface endpoints' ``*.vpce.amazonaws.com`` names, the public addresses). Functions
trust it through ``AWS_CA_BUNDLE`` (a read-only copy inside their sandbox), so SDKs talk TLS to
lamina as they do to AWS. The CA is kept across restarts; the server certificate is made again
when the names change. Both use P-256 keys; the extensions are the ones strict X.509 checking
(Python 3.13's default ``VERIFY_X509_STRICT``) wants: key identifiers, key usage, basic constraints.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import ssl
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lamina.errors import LaminaError

CA_DAYS = 3650
SERVER_DAYS = 825  # what browsers and Apple's TLS accept for a server certificate


class TlsError(LaminaError):
    """The CA or the certificate could not be made (no ``openssl``, or it failed)."""


@dataclass(frozen=True)
class TlsFiles:
    ca: Path  # the CA certificate (public)
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert, self.key)
        return ctx


def _openssl(*args: str, cwd: Path) -> None:
    tool = shutil.which("openssl")
    if tool is None:
        raise TlsError("no openssl command")
    done = subprocess.run([tool, *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise TlsError(f"openssl {args[0]}: {done.stderr.strip()[-500:]}")


def ensure(directory: Path, names: Iterable[str], addresses: Iterable[str]) -> TlsFiles:
    """The CA and a server certificate for ``names`` and ``addresses`` under ``directory``, made if
    missing or if the names changed (``TlsError`` if they cannot be)."""
    directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    ca, ca_key = directory / "ca.pem", directory / "ca.key"
    cert, key, stamp = directory / "server.pem", directory / "server.key", directory / "server.names"
    sans = [f"DNS:{n}" for n in names] + [f"IP:{a}" for a in addresses]
    digest = hashlib.sha256(",".join(sans).encode()).hexdigest()
    old = os.umask(0o077)
    try:
        if not (ca.is_file() and ca_key.is_file()):
            tag = os.urandom(4).hex()
            _openssl(
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", "ca.key.new", "-out", "ca.pem.new", "-days", str(CA_DAYS),
                "-subj", f"/O=lamina/CN=lamina local CA {tag}",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                "-addext", "subjectKeyIdentifier=hash",
                cwd=directory,
            )  # fmt: skip
            (directory / "ca.key.new").rename(ca_key)
            (directory / "ca.pem.new").rename(ca)
            stamp.unlink(missing_ok=True)
        if not (cert.is_file() and key.is_file() and stamp.is_file() and stamp.read_text() == digest):
            ext = directory / "server.ext"
            ext.write_text(
                "basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\n"
                "subjectKeyIdentifier=hash\n"
                "authorityKeyIdentifier=keyid,issuer\n"
                f"subjectAltName={','.join(sans)}\n"
            )
            _openssl(
                "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", "server.key.new", "-out", "server.csr", "-subj", "/O=lamina/CN=lamina API",
                cwd=directory,
            )  # fmt: skip
            _openssl(
                "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-set_serial", str(int.from_bytes(os.urandom(8), "big")), "-days", str(SERVER_DAYS),
                "-extfile", "server.ext", "-out", "server.pem.new",
                cwd=directory,
            )  # fmt: skip
            (directory / "server.key.new").rename(key)
            (directory / "server.pem.new").rename(cert)
            stamp.write_text(digest)
            for leftover in ("server.csr", "server.ext"):
                (directory / leftover).unlink(missing_ok=True)
    finally:
        os.umask(old)
    ca.chmod(0o644)  # public: bind-mounted read-only into sandboxes
    return TlsFiles(ca, cert, key)
