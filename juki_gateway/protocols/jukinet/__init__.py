"""The Juki-net links: municipal CS ↔ prefecture server ↔ 機構.

The pure, sans-IO core lives here (message catalogue and body layouts, sequencing state machines,
search rule R3, routing of 転入通知, number generation, the consistency-check diff); the Twisted
adapters and the store-backed node live in :mod:`juki_gateway.gateway.jukinet`.
"""
