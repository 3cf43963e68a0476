"""The ESP side's statement of the protocol: the batches it builds, what a receiver must answer."""
