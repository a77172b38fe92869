"""Pure domain rules: jobs, states, parsing and the scheduling decision. No I/O here."""
