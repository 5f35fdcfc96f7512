// store_conformance
