"""Fixed-length binary codecs: record layouts as data, field kinds, and the frame envelope.

Everything here is pure (bytes in, values out) and never touches I/O or a reactor.
"""
