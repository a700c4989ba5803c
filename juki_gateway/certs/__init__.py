"""The development PKI: CA, node/client/operator certificates, CRLs and identities."""
