"""Code every function ships with: settings from the environment, action reports,
boto3 clients, time, and the Powertools objects every handler uses."""
