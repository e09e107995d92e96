"""The domain: what a Kerberos server is, what is wrong with it, and the ports to the outside.

Imports only the standard library.
"""
