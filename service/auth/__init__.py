"""Who is calling and what they may see: principals, API keys, TLS, the authenticating check, the activity log."""
