"""Prometheus metrics of the daemon, in a dedicated ``CollectorRegistry``.

Names are prefixed ``juki_gateway_``; labels carry endpoint names, roles, reasons, message
types and error codes only, never a resident identifier.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from twisted.web.resource import Resource

PREFIX = "juki_gateway"


class GatewayMetrics:
    """Every metric of the gateway, registered in its own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.handshakes = Counter(
            f"{PREFIX}_handshakes", "TLS handshake attempts by endpoint, result and reason",
            ["endpoint", "result", "reason"], registry=r,
        )
        self.handshake_seconds = Histogram(
            f"{PREFIX}_handshake_duration_seconds", "TLS handshake duration",
            ["endpoint"], registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
        )
        self.active = Gauge(
            f"{PREFIX}_active_connections", "Established connections by endpoint and peer role",
            ["endpoint", "peer_role"], registry=r,
        )
        self.frames_in = Counter(
            f"{PREFIX}_frames_in", "Frames received by endpoint and message type",
            ["endpoint", "msg_type"], registry=r,
        )
        self.frames_out = Counter(
            f"{PREFIX}_frames_out", "Frames sent by endpoint and message type",
            ["endpoint", "msg_type"], registry=r,
        )
        self.frame_errors = Counter(
            f"{PREFIX}_frame_errors", "Frame errors by endpoint and error code",
            ["endpoint", "code"], registry=r,
        )
        self.cert_days = Gauge(
            f"{PREFIX}_certificate_expiry_seconds",
            "Seconds until a certificate expires (base unit seconds, as promtool requires)",
            ["identity"], registry=r,
        )

    def record_handshake(self, endpoint: str, status: str, seconds: float) -> None:
        """Count one handshake attempt and observe its duration."""
        self.handshakes.labels(endpoint, "ok" if status == "ok" else "refused", status).inc()
        self.handshake_seconds.labels(endpoint).observe(seconds)

    def update_certificate_expiry(self, pki_dir: Path, now: float) -> None:
        """Set seconds-to-expiry for every ``*.pem`` certificate in the PKI directory."""
        moment = dt.datetime.fromtimestamp(now, dt.UTC)
        for pem in sorted(pki_dir.glob("*.pem")):
            if pem.name == "crl.pem":
                continue
            try:
                cert = x509.load_pem_x509_certificate(pem.read_bytes())
            except ValueError:
                continue
            seconds = (cert.not_valid_after_utc - moment).total_seconds()
            self.cert_days.labels(pem.stem).set(round(seconds, 1))


def metrics_resource(metrics: GatewayMetrics) -> Resource:
    """A twisted.web root whose ``/metrics`` child serves the exposition format."""
    from prometheus_client.twisted import MetricsResource

    root = Resource()
    root.putChild(b"metrics", MetricsResource(registry=metrics.registry))
    return root
