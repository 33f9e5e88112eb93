"""Security-group remediation: closes ingress opened to the whole internet on ports that should not be public."""
