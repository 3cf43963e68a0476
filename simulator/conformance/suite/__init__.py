"""The shipped conformance suite: `pytest --pyargs simulator.conformance.suite`."""
