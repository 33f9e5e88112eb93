"""``opsauto``: the operator command of the automations (status, kept events, replay, preview).

It works against the current AWS credentials and region, and reads the app's settings (``cdk.json``) to know
which stacks to look at. Nothing here is deployed to Lambda.
"""
