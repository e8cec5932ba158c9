"""Conformance suite for tributestore backends."""
