"""IAM access-key rotation through Secrets Manager, and the stale-key sweep."""
