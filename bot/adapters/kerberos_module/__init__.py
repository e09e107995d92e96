"""Implementations of the KerberosModule port: the emulator (tests, demo) and, later, the real module."""
