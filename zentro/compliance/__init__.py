"""Compliance: catalogs, evidence engine, framework packs, attestations, vendors, bundles, assessor access."""
