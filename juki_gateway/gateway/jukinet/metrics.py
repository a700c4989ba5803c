"""Prometheus metrics of the Juki-net links, per node and link (peer).

Labels carry node ids, message type names, results and error codes, never a resident
identifier. Registered in the registry passed in (the daemon's, or a test's own).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

PREFIX = "juki_gateway_jukinet"


class JukinetMetrics:
    """Every metric of the Juki-net links."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.messages = Counter(
            f"{PREFIX}_messages", "Records/messages by node, peer, type and result",
            ["node", "peer", "msg_type", "result"], registry=r,
        )
        self.ack_latency = Histogram(
            f"{PREFIX}_ack_latency_seconds", "Time from writing a sequenced frame to its ACK",
            ["node", "peer"], registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        )
        self.outbox_depth = Gauge(
            f"{PREFIX}_outbox_depth", "Records queued on a link and not yet acknowledged",
            ["node", "peer"], registry=r,
        )
        self.oldest_unacked = Gauge(
            f"{PREFIX}_oldest_unacked_age_seconds", "Age of the oldest unacknowledged record",
            ["node", "peer"], registry=r,
        )
        self.resends = Counter(
            f"{PREFIX}_resent_records", "Records sent again after an outage or a NACK",
            ["node", "peer"], registry=r,
        )
        self.link_blocked = Gauge(
            f"{PREFIX}_link_blocked",
            "1 while the peer refused a record on this link (sending stops at it until reconnect)",
            ["node", "peer"], registry=r,
        )
        self.gaps = Counter(
            f"{PREFIX}_sequence_gaps", "Frames that skipped ahead of the expected 更新順番号",
            ["node", "peer"], registry=r,
        )
        self.search_refusals = Counter(
            f"{PREFIX}_search_refusals", "Searches refused (R3 and bad identifiers)",
            ["node", "reason"], registry=r,
        )
        self.pool_size = Gauge(
            f"{PREFIX}_juminhyo_code_pool_size", "Unused 住民票コード in the CS's pool",
            ["node"], registry=r,
        )
        self.pool_low = Gauge(
            f"{PREFIX}_juminhyo_code_pool_low", "1 when the 住民票コード pool is at or below low water",
            ["node"], registry=r,
        )
        self.pool_refills = Counter(
            f"{PREFIX}_juminhyo_code_pool_refills", "Requests to 機構 for more 住民票コード, by result",
            ["node", "result"], registry=r,
        )
        self.awaiting_fetch = Gauge(
            f"{PREFIX}_awaiting_fetch",
            "転入通知 held for a peer that fetches them (a CS's existing system, a CS its "
            "prefecture has no link to) and not yet acknowledged", ["node", "holder"], registry=r,
        )
        self.awaiting_fetch_age = Gauge(
            f"{PREFIX}_awaiting_fetch_oldest_age_seconds",
            "Age of the oldest 転入通知 waiting to be fetched", ["node", "holder"], registry=r,
        )
        self.errors = Counter(
            f"{PREFIX}_errors", "Refusals sent, by node and error code",
            ["node", "code"], registry=r,
        )
