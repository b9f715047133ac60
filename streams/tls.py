"""TLS for the listeners dfstream runs (the call hook): certificates from files, reloaded in place.

:class:`ServerTls` holds one :class:`ssl.SSLContext` for the life of the server. Reloading
(:meth:`ServerTls.reload`, on SIGHUP) loads the certificate chain, key and client CA from their
files into that same context: handshakes from then on present the new certificate, and
connections already open keep the session they negotiated, so no call is dropped. With a client
CA, every client must present a certificate it signed (mutual TLS). TLS 1.2 at least.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from dfstream.engine.core.errors import ConfigError


@dataclass(frozen=True)
class TlsFiles:
    """Where a listener's certificate chain and key are, and (for mutual TLS) the CA of its clients."""

    certfile: str
    keyfile: str
    client_ca: str | None = None


class ServerTls:
    """A server-side SSLContext loaded from :class:`TlsFiles` (ConfigError saying which file is wrong)."""

    def __init__(self, files: TlsFiles):
        self.files = files
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        if files.client_ca:
            self.context.verify_mode = ssl.CERT_REQUIRED
        self.reload()

    @property
    def mutual(self) -> bool:
        """Whether clients must present a certificate."""
        return self.files.client_ca is not None

    def reload(self) -> None:
        """Load the files again into the same context: new handshakes use them, open connections go on."""
        files = self.files
        named = (("--certfile", files.certfile), ("--keyfile", files.keyfile), ("--client-ca", files.client_ca))
        for name, path in named:
            if path is not None and not Path(path).is_file():
                raise ConfigError(f"{name} {path}: no such file")
        try:
            self.context.load_cert_chain(files.certfile, files.keyfile)
            if files.client_ca:
                self.context.load_verify_locations(cafile=files.client_ca)
        except ssl.SSLError as e:
            raise ConfigError(
                f"cannot use the TLS files (--certfile {files.certfile}, --keyfile {files.keyfile}"
                + (f", --client-ca {files.client_ca}" if files.client_ca else "")
                + f"): {e.reason or e}; the certificate must be PEM and match the key"
            ) from None
