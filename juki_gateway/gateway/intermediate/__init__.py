"""The intermediate server's store-backed service and its link session.

* its own tables (flags with scopes, held queries with their content, permission-list versions,
  spent permit ids) are part of the store schema: :mod:`juki_gateway.registry_store.ims_models`;
* :mod:`.service` — :class:`~.service.IntermediateService`: queries, permission list, 符号,
  副本 import/export, flags, held queries, provision records, audit entries, metrics;
* :mod:`.session` — the sans-IO frame session of the intermediate endpoint (signed frames).

The decision logic itself is pure and lives in :mod:`juki_gateway.protocols.intermediate`.
"""
