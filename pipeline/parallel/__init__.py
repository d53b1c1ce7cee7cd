"""Every process, thread and garbage-collection device of the program, behind a few functions: the
isolated worker pool (`pool.map`), a background call, and the GC pause."""
