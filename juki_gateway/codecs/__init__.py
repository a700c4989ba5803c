"""Fixed-length binary codecs: record layouts as data, field kinds, and the frame envelope.

Everything here is pure (bytes in, values out) and never touches I/O or a reactor.

- ``frame``: the frame envelope (``encode_frame``, sans-IO ``FrameDecoder``, ``Frame``,
  ``FrameRejected``, ``HEADER_LENGTH``); ``messages``: ``MessageSpec`` (a message entry), the
  envelope's own types (``MessageType``, ``BASE_MESSAGES``), ``encode_error``/``decode_error``.
  The one message catalogue is built above, in ``juki_gateway/protocols/catalogue.py``, and
  handed down: nothing here imports the protocol layer.
- ``layouts``: the tables (``honnin-kakunin``, ``soufusaki``, ``fukuhon-juminhyo``,
  ``frame-header``, ``error``); ``schema``: ``Field``, ``Layout`` and the derivations;
  ``fields``/``textfields``: field kinds; ``codetables``: 性別, 続柄, 異動事由 …
- ``record``: ``get_codec(layout, profile)`` → ``decode``, ``encode``, ``decode_many``,
  ``encode_many``, ``complete``, ``record_length``; ``reference``: the construct path.
- ``checkdigits``, ``gaiji`` (profiles ``jukinet``/``intermediate``, substitutes), ``kana``,
  ``errors`` (the ``CodecError`` hierarchy), ``samples``, ``vectors`` and ``docs`` (given the
  catalogue by ``juki_gateway.protocols.vectors`` and ``juki_gateway.docs``).
"""
