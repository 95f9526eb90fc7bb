"""The tutorial's demo service (podtato-head's hello-server), in Python, with its metrics."""
