"""The intermediate server (中間サーバ): pure core of 符号, 副本, permits, the permission list,
the information-query decision and the auto-response-block (DV) flags.

Everything in this package is sans-IO: values and bytes in, values and bytes out. The
store-backed service and the Twisted adapters live in :mod:`juki_gateway.gateway.intermediate`.
"""
