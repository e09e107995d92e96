"""Block Kit views: pure functions from domain results to Slack messages."""
