"""Backends shipped with or resolved by sitq-core: `memory` here, others through plugins."""
