"""What the board hands out: per-unit copies of the form, and the bundled sample inbox for the demo."""
