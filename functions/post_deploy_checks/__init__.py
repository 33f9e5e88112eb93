"""Post-deployment checks for CodePipeline invoke actions and CodeDeploy lifecycle hooks."""
