"""alerts: CloudWatch alarms, log errors, AWS events and action reports -> Slack / Teams / webhook messages."""
