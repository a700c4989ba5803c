"""The daemon: configuration, the Twisted service tree, endpoints, metrics and logs."""
