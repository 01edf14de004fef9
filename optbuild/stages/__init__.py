"""Stage implementations. Each is a top-level function `(inputs, params, out_dir) -> result`
run in a fresh worker process; heavy toolkits are imported inside the function."""
