"""kerberos-bot: Slack chat-ops for Microsoft Entra Kerberos (Azure SQL MI incoming trust-based flow)."""

__version__ = "0.1.0"
