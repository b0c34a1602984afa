"""One module per resource; each handler only translates between HTTP and a service call."""
