"""juki-gateway: a simulator of the Basic Resident Register Network (住基ネット) links and of the
My Number intermediate server (中間サーバ).

Sub-packages, in the order data flows through them:

- ``codecs``: fixed-length record layouts (本人確認情報, 送付先情報, 副本) and the frame envelope;
  pure, sans-IO.
- ``protocols``: sans-IO link state machines and the thin Twisted adapters around them.
- ``certs``: the development PKI, certificate identities and TLS context factories.
- ``registry_store``: the SQLAlchemy store (SQLite by default, PostgreSQL for scale).
- ``gateway``: the daemon's service tree, configuration, metrics and logs.
- ``simulators``: the client roles (existing system, linkage system, information provision
  network) that drive the daemon.
"""

__version__ = "0.1.0"
