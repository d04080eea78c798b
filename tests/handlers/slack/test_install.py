"""What the Slack app asks for: the manifest's scopes, redirect and request URLs, and the scopes
/slack/install asks for."""

from __future__ import annotations

from tests.support import REPO


def test_the_manifest_asks_for_exactly_the_scopes_it_needs() -> None:
    import yaml

    manifest = yaml.safe_load((REPO / "slack" / "manifest.yml").read_text())
    assert manifest["oauth_config"]["scopes"] == {
        "bot": [
            "chat:write",
            "commands",
            "channels:read",
            "groups:read",
            "channels:history",
            "groups:history",
            "files:write",
            "incoming-webhook",
        ]
    }
    from integrations.slack_install import BOT_SCOPES

    assert list(BOT_SCOPES) == manifest["oauth_config"]["scopes"]["bot"]  # what /slack/install asks
    assert manifest["oauth_config"]["redirect_urls"] == [
        "https://arbot.example.com/slack/oauth_redirect"
    ]
    assert "user" not in manifest["oauth_config"]["scopes"]
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == ["/ar"]
    urls = {
        manifest["settings"]["interactivity"]["request_url"],
        manifest["settings"]["event_subscriptions"]["request_url"],
        manifest["features"]["slash_commands"][0]["url"],
    }
    assert urls == {"https://arbot.example.com/slack/events"}
