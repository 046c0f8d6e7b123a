"""Code generated from `protos/` by `make proto`: the public speech API and the internal
STT and translation APIs. Never edited by hand."""
