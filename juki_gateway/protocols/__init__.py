"""Link protocols: sans-IO state machines per link, and thin Twisted adapters feeding them."""
