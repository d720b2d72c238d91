"""Jobs: the durable store, the state machine, dispatch and the worker that runs them."""
