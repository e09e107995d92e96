"""The Entra stand-in, one module per API it plays: the identity platform (``identity``), Microsoft
Graph (``graph``, with its OData filters in ``odata``), Entra's KerberosDomain store
(``kerberos_domains``) and the stand-in's own admin endpoints (``admin``); ``base`` holds the state
they share. ``kerberos_sandbox.entra_standin.EntraStandIn`` puts them together on one HTTPS origin.
"""
