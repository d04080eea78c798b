"""Several Slack workspaces in one deployment: the registry of installed workspaces, each with its own data, settings and runtime."""
