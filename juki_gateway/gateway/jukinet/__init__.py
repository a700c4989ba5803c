"""The Juki-net links in the daemon: store operations, the Twisted adapter and the node service.

``store`` holds the blocking, batched store operations (run on the store's single writer
thread), ``protocol`` the thin Twisted adapter that feeds frames to a node, ``node`` the
domain service of one endpoint (municipal CS, prefecture or 機構) wiring the sans-IO state
machines of :mod:`juki_gateway.protocols.jukinet` to the store, the links and the metrics.
"""
